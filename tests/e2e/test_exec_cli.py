"""neuro exec, attach and kill --signal end to end (issue 7, part 3 and 5): the real neurod and
the real neuro CLI; `neuro exec -t JOB -- sh` runs under a pseudo-terminal (Python's pty
module), as a person at a terminal would use it: type a command, read the answer, leave with
an exit code. On the docker runtime (the test Podman service) and the process runtime."""
import os
import pty
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import NEURO, main  # noqa: E402
from test_jobs_cli import Cluster, image  # noqa: E402


def read_until(fd, want, timeout=30):
    """Reads the pty until `want` (bytes) was seen; returns everything read."""
    got = b""
    deadline = time.time() + timeout
    while want not in got:
        left = deadline - time.time()
        assert left > 0, f"did not see {want!r} in {got[-2000:]!r}"
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        got += chunk
    assert want in got, f"did not see {want!r} in {got[-2000:]!r}"
    return got


def interactive_shell(c, user, job):
    """neuro exec -t JOB -- sh under a pty: a command typed, its answer read, exit 5."""
    pid, fd = pty.fork()
    if pid == 0:
        env = dict(os.environ, **user.env)
        env["TERM"] = "xterm"
        os.execve(NEURO, [NEURO, "exec", "-t", job, "--", "sh"], env)
    try:
        time.sleep(0.5)
        os.write(fd, b"echo $((6 * 7))-answer\r")
        read_until(fd, b"42-answer")
        os.write(fd, b"stty size\r")
        out = read_until(fd, b"\n", timeout=10)
        os.write(fd, b"exit 5\r")
        deadline = time.time() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.time() < deadline, "neuro exec did not end after exit"
            try:
                select.select([fd], [], [], 0.2)
                out += os.read(fd, 4096)
            except OSError:
                time.sleep(0.1)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 5, (status, out)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def exec_flows(tmp, runtime):
    c = Cluster(tmp, runtime, users=("alice", "bob"))
    try:
        alice, bob = c.alice, c.bob
        script = ("trap 'echo got-usr1' USR1; trap 'echo got-term; exit 3' TERM; echo started; "
                  "while true; do sleep 0.1; done")
        job = alice.detach("-n", "shell-1", image(), "--", "sh", "-c", script)
        alice.wait_status(job, "running")

        interactive_shell(c, alice, "shell-1")

        # Without a terminal: stdin piped, stdout and stderr apart, the exit code passed on.
        r = alice.neuro("exec", "-T", "-i", job, "--", "sh", "-c", "cat; echo to-stderr >&2; exit 4",
                        input="piped line\n", expect=4)
        assert r.stdout == "piped line\n", r.stdout
        assert "to-stderr" in r.stderr, r.stderr
        r = alice.neuro("exec", "-T", job, "--", "echo", "two words", "it's")
        assert r.stdout == "two words it's\n", r.stdout

        # Others cannot; a bad signal is refused.
        r = bob.neuro("exec", "-T", job, "--", "true", expect=None)
        assert r.returncode != 0, r.stderr
        r = bob.neuro("kill", "--signal", "TERM", job, expect=None)
        assert r.returncode != 0, r.stderr
        r = alice.neuro("kill", "--signal", "NOPE", job, expect=None)
        assert r.returncode != 0 and "signal" in r.stderr, r.stderr

        # Signals: USR1 is trapped and the job runs on; TERM ends it with the trap's code.
        alice.neuro("kill", "--signal", "USR1", job)
        deadline = time.time() + 20
        while "got-usr1" not in alice.logs(job):
            assert time.time() < deadline, alice.logs(job)
            time.sleep(0.2)
        assert alice.job(job)["status"] == "running"
        alice.neuro("kill", "-s", "SIGTERM", job)
        done = alice.wait_finished(job)
        assert done["history"]["exit_code"] == 3, done
        r = alice.neuro("exec", "-T", job, "--", "true", expect=None)
        assert r.returncode != 0 and "not running" in r.stderr, r.stderr
    except Exception:
        print(c.diagnostics())
        raise
    finally:
        c.close()


def test_exec_attach_kill_on_docker(tmp):
    exec_flows(tmp, "docker")


def test_exec_attach_kill_on_process(tmp):
    exec_flows(tmp, "process")


def test_attach_on_docker(tmp):
    c = Cluster(tmp, "docker", users=("alice",))
    try:
        alice = c.alice
        job = alice.detach(image(), "--", "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done")
        alice.wait_status(job, "running")
        p = alice.popen("attach", job)
        deadline = time.time() + 20
        seen = ""
        while "tick-" not in seen:
            assert time.time() < deadline, seen
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                seen += p.stdout.readline()
        p.kill()
        p.wait()
        assert alice.job(job)["status"] == "running"
        alice.neuro("kill", job)
    except Exception:
        print(c.diagnostics())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    wanted = sys.argv[1:]
    cases = [test_exec_attach_kill_on_docker, test_exec_attach_kill_on_process, test_attach_on_docker]
    main([t for t in cases if not wanted or any(w in t.__name__ for w in wanted)])
