"""Port-forward and save end to end (issue 7, parts 4 and 5): the real neurod and neuro
binaries, an HTTP server (busybox httpd) inside a job, a real HTTP client (urllib) fetching
through `neuro port-forward` on localhost, and `neuro save` into neurod's own registry with
a new job that runs the saved image. Docker runtime on the test Podman service, and the
process runtime."""
import hashlib
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port  # noqa: E402
from test_jobs_cli import Cluster, image, main, clusters  # noqa: E402,F401

FORWARDING = re.compile(r"^Forwarding 127\.0\.0\.1:(\d+) -> port (\d+) of job (job-[0-9a-f]+)$")


def http_job(user, img, port, mib):
    """A job that makes a random file of `mib` MiB, prints its sha256 and serves it with busybox httpd."""
    script = (f"mkdir -p /tmp/www && busybox dd if=/dev/urandom of=/tmp/www/blob bs=1048576 count={mib} 2>/dev/null"
              f" && busybox sha256sum /tmp/www/blob && exec busybox httpd -f -p {port} -h /tmp/www")
    job = user.detach(img, "--", "sh", "-c", script)
    user.wait_status(job, "running")
    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(r"^([0-9a-f]{64})\s", user.logs(job), re.M)
        if m:
            return job, m.group(1)
        time.sleep(0.2)
    raise AssertionError(f"job {job} never printed its file's hash")


class Forwarder:
    """`neuro port-forward JOB 0:PORT …` running in the background; the local ports it chose."""

    def __init__(self, user, job, *remotes):
        self.proc = user.popen("port-forward", job, *[f"0:{p}" for p in remotes])
        self.local = {}
        # A reader thread, not select() on the pipe: the text wrapper reads ahead, so lines
        # already in its buffer would never make the pipe readable again.
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout] + [lines.put("")],
                         daemon=True).start()
        deadline = time.time() + 30
        while len(self.local) < len(remotes):
            left = deadline - time.time()
            assert left > 0, "neuro port-forward did not say where it listens"
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            assert line, f"neuro port-forward ended: {self.proc.stderr.read()}"
            m = FORWARDING.match(line.strip())
            if m:
                assert m.group(3) == job
                self.local[int(m.group(2))] = int(m.group(1))

    def url(self, remote, path):
        return f"http://127.0.0.1:{self.local[remote]}{path}"

    def stop(self):
        """Ctrl-C: exits 0; returns what it printed on stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        err = self.proc.stderr.read()
        assert code == 0, (code, err)
        return err


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200
        return r.read()


def check_forwarding(user, img, port, closed_port):
    job, digest = http_job(user, img, port, 24)
    fwd = Forwarder(user, job, port, closed_port)
    try:
        # A real HTTP client through localhost, several requests at once.
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda _: fetch(fwd.url(port, "/blob")), range(8)))
        for body in bodies:
            assert len(body) == 24 << 20
            assert hashlib.sha256(body).hexdigest() == digest
        # Nothing listens on the other port: that connection is closed, the reason printed,
        # and the forwarder goes on.
        s = socket.create_connection(("127.0.0.1", fwd.local[closed_port]), timeout=30)
        s.settimeout(30)
        assert s.recv(1) == b""
        s.close()
        assert hashlib.sha256(fetch(fwd.url(port, "/blob"))).hexdigest() == digest
    finally:
        err = fwd.stop()
    assert f"nothing listens on port {closed_port} in job {job}" in err, err
    user.neuro("kill", job)


def test_port_forward_docker(tmp):
    c = Cluster(tmp, "docker")
    try:
        check_forwarding(c.alice, image(), 8080, 8081)
        # Bob may not forward alice's jobs.
        job = c.alice.detach(image(), "--", "sleep", "300")
        c.alice.wait_status(job, "running")
        r = c.bob.neuro("port-forward", job, "0:80", expect=None, timeout=20)
        assert r.returncode == 5 and "HTTP 404" in r.stderr, r.stderr
    finally:
        c.close()


def test_port_forward_process(tmp):
    c = Cluster(tmp, "process")
    try:
        check_forwarding(c.alice, image(), free_port(), free_port())
    finally:
        c.close()


def test_save_docker(tmp):
    c = Cluster(tmp, "docker", image_registry="")
    try:
        a = c.alice
        job = a.detach(image(), "--", "sh", "-c", "echo written-before-save > /marker && echo ready && exec sleep 300")
        a.wait_status(job, "running")
        deadline = time.time() + 60
        while "ready" not in a.logs(job):
            assert time.time() < deadline
            time.sleep(0.2)
        out = a.neuro("save", job, "image:snap:v1", timeout=300).stdout.strip().splitlines()
        assert re.match(r"^Saved image://e2e/alice/snap:v1 sha256:[0-9a-f]{64}$", out[-1]), out
        assert "image:snap" in a.neuro("image", "ls").stdout.split()
        # A foreign registry is refused with the reference's words.
        r = a.neuro("save", job, "quay.io/alice/snap:v1", expect=None)
        assert r.returncode == 5 and "Unknown registry host" in r.stderr, r.stderr
        second = a.detach("image:snap:v1", "--", "cat", "/marker")
        assert a.wait_finished(second, timeout=180)["status"] == "succeeded"
        assert a.logs(second) == "written-before-save\n"
        a.neuro("kill", job)
    finally:
        c.close()


if __name__ == "__main__":
    main([test_save_docker, test_port_forward_docker, test_port_forward_process], workers=3)
