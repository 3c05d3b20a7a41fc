"""Jobs end to end (issue 4): the real neurod and the real neuro CLI, with the docker executor
on the test Podman service (tests/support/podman.sh: an image built offline from
busybox-static) and with the process executor; SQLite for the main flows, PostgreSQL for a
basic run and the durability tests.

The cases run concurrently (each with its own neurod, data dir and temp dir) so that the
slow waits (a one-minute life span, a neurod killed while jobs run) overlap. A failed case
prints the tail of each of its neurod logs."""
import calendar
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

from harness import NEURO, Neurod, create_pg_database, run

PODMAN_DIR = os.environ.get("NEUROD_TEST_PODMAN_DIR", "")

# Cheap password hashing keeps logins fast.
AUTH_YAML = "  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"

# The first preset is the default one. gpu-1 asks for a GPU this node does not have.
PRESETS_YAML = (
    "presets:\n"
    "  - {name: cpu-small, cpu: 0.5, memory: 128MiB}\n"
    "  - {name: cpu-large, cpu: 1, memory: 256MiB}\n"
    "  - {name: gpu-1, cpu: 1, memory: 1GiB, gpu: 1}\n"
)

FINISHED = ("succeeded", "failed", "cancelled")
JOB_ID = re.compile(r"^job-[0-9a-f]+$")


def podman_file(name):
    path = os.path.join(PODMAN_DIR, name)
    if not PODMAN_DIR or not os.path.exists(path):
        raise RuntimeError(f"no test Podman service ({path} missing); CTest's podman.start fixture starts one, "
                           "or run tests/support/podman.sh start DIR and set NEUROD_TEST_PODMAN_DIR=DIR")
    return open(path).read().strip()


def image():
    return podman_file("image") if PODMAN_DIR else "localhost/neurod-test/busybox:1"


def node_yaml(runtime, image_registry="local"):
    """modules: for a node with 2 CPUs, 4 GiB and no GPUs (the tests' capacity), as in
    tests/http/jobs_helpers.hpp: explicit ulimits no higher than this machine's."""
    y = "modules:\n" + AUTH_YAML + (
        "  executor:\n"
        f"    runtime: {runtime}\n"
        "    stop_grace: 2s\n"
        "    capacity: {cpu: 2, memory: 4GiB, gpus: 0}\n"
    )
    if runtime == "docker":
        y += (
            "    docker:\n"
            f"      socket: {podman_file('socket')}\n"
            "      ulimits:\n"
            "        - {name: nofile, soft: 1024, hard: 1024}\n"
            "        - {name: nproc, soft: 4096, hard: 4096}\n"
        )
    # image:NAME:TAG: the engine's local images (the test image, localhost/bb:1) unless a
    # case pulls from neurod's own registry (image_registry "").
    y += "  jobs:\n    restart_backoff: 200ms\n    metering_interval: 1s\n"
    y += f"    image_registry: \"{image_registry}\"\n"
    return y + PRESETS_YAML


def docker_starts(job_id):
    """How many times the engine started a container of this job (the Podman service's
    events file, DIR/events.log, written by podman.sh's containers.conf)."""
    path = os.path.join(PODMAN_DIR, "events.log")
    n = 0
    with open(path) as f:
        for line in f:
            if job_id not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("Status") == "start" and e.get("Attributes", {}).get("io.neurod.job") == job_id:
                n += 1
    return n


def lines_script(tag, end, code):
    """A job that prints '<tag> start', then numbered lines every 0.3 s until the wall-clock
    time `end` (seconds since the epoch), then '<tag> end N' (N: how many), and exits with
    code. An absolute end keeps a timeline around a neurod restart whatever the start-up
    delays of a busy machine."""
    return (f'echo "{tag} start"; i=0; while [ $(date +%s) -lt {int(end)} ]; do i=$((i+1)); echo "{tag} line $i"; '
            f'sleep 0.3; done; echo "{tag} end $i"; exit {code}')


def check_lines(tag, lines, complete=True):
    """Every line of a lines_script job exactly once and in order (a prefix when not complete)."""
    n = len(lines) - 2
    whole = [f"{tag} start"] + [f"{tag} line {i}" for i in range(1, n + 1)] + [f"{tag} end {n}"]
    if complete:
        assert n >= 1 and lines == whole, (tag, lines)
    else:
        started = [f"{tag} start"] + [f"{tag} line {i}" for i in range(1, len(lines))]
        assert not lines or lines == started or lines == whole, (tag, lines)


def iso_seconds(text):
    """Seconds since the epoch of an RFC 3339 UTC time such as 2026-11-23T15:00:00.123Z."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    assert m, text
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)


# --- per-case diagnostics -------------------------------------------------------------

_case = threading.local()


def clusters():
    if not hasattr(_case, "clusters"):
        _case.clusters = []
    return _case.clusters


def tail(text, n=60):
    return "\n".join(text.splitlines()[-n:])


class User:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.config = os.path.join(cluster.tmp, f"neuro-{name}.yaml")

    @property
    def env(self):
        # NEURO_URL: the port changes when neurod restarts; the token stays valid.
        return {"NEURO_CONFIG": self.config, "NEURO_TOKEN": "", "NEURO_URL": self.cluster.d.url, "NO_COLOR": "1"}

    def neuro(self, *args, input=None, expect=0, timeout=90):
        r = run([NEURO, *args], env=self.env, input=input, timeout=timeout)
        if expect is not None:
            assert r.returncode == expect, (f"neuro {' '.join(args)} as {self.name}: exit {r.returncode} (wanted {expect})"
                                            f"\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        return r

    def popen(self, *args):
        return subprocess.Popen([NEURO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, **self.env))

    def json(self, *args):
        return json.loads(self.neuro("-o", "json", *args).stdout)

    def job(self, ref):
        return self.json("status", ref)

    def detach(self, *args):
        """neuro run --detach ARGS: returns the job id printed."""
        out = self.neuro("run", "--detach", *args).stdout.strip()
        assert JOB_ID.match(out), f"neuro run --detach printed {out!r}"
        return out

    def wait(self, ref, pred, timeout=60, what="the expected state"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = self.neuro("-o", "json", "status", ref, expect=None)
            if r.returncode == 0:  # a job submitted by another process may not be there yet
                last = json.loads(r.stdout)
                if pred(last):
                    return last
            else:
                last = r.stderr
            time.sleep(0.2)
        raise AssertionError(f"job {ref} did not reach {what} in {timeout}s; last: {json.dumps(last)[:3000]}")

    def wait_status(self, ref, status, timeout=60):
        return self.wait(ref, lambda j: j["status"] == status, timeout, status)

    def wait_finished(self, ref, timeout=60):
        return self.wait(ref, lambda j: j["status"] in FINISHED, timeout, "a finished status")

    def logs(self, ref, *args):
        return self.neuro("logs", *args, ref).stdout

    def token(self):
        m = re.search(r'^token:\s*"?([^"\s]+)"?\s*$', open(self.config).read(), re.M)
        assert m, f"no token in {self.config}"
        return m.group(1)

    def http(self, method, path, body=None, raw=None):
        """The HTTP API directly, for what the CLI does not send (it refuses some specs itself)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.cluster.d.url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token(),
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


class Cluster:
    """A neurod with the given executor runtime and database, an admin and users."""

    def __init__(self, tmp, runtime, database_url="sqlite:neurod.db", users=("alice", "bob"), image_registry="local"):
        self.tmp = tmp
        self.runtime = runtime
        self.previous_logs = []
        self.d = Neurod(tmp, extra_yaml=node_yaml(runtime, image_registry), database_url=database_url)
        clusters().append(self)
        self.d.start()
        self.admin = User(self, "admin")
        token = open(os.path.join(self.d.data_dir, "auth", "admin.token")).read().strip()
        self.admin.neuro("login", self.d.url, "--token-stdin", input=token + "\n")
        self.users = {}
        for name in users:
            self.add_user(name)

    def add_user(self, name):
        password = f"{name}-secret-1"
        self.admin.neuro("admin", "user", "add", name, "--password-stdin", input=password + "\n")
        u = User(self, name)
        u.neuro("login", self.d.url, "-u", name, "--password-stdin", input=password + "\n")
        self.users[name] = u
        return u

    def __getattr__(self, name):
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)

    def all_logs(self):
        return "".join(self.previous_logs) + self.d.output()

    def sigkill(self):
        self.d.proc.kill()
        self.d.proc.wait()

    def restart(self):
        self.previous_logs.append(self.d.output())  # start() truncates the log
        self.d.start()

    def launches(self, job_id):
        """How many times the scheduler launched the job, over every run of neurod."""
        return len(re.findall(rf"jobs: launching {job_id} \(attempt", self.all_logs()))

    def diagnostics(self):
        parts = []
        for i, text in enumerate(self.previous_logs):
            parts.append(f"---- neurod log (run {i + 1}), last lines ({self.tmp}) ----\n{tail(text)}")
        try:
            parts.append(f"---- neurod log (last run), last lines ({self.tmp}) ----\n{tail(self.d.output())}")
        except OSError:
            pass
        return "\n".join(parts)

    def containers(self):
        """This node's containers on the test Podman service."""
        node = open(os.path.join(self.d.data_dir, "executor", "node-id")).read().strip()
        r = subprocess.run(["podman", "--url", "unix://" + podman_file("socket"), "ps", "-a", "-q", "--filter",
                            f"label=io.neurod.node={node}"], capture_output=True, text=True, timeout=60)
        return r.stdout.split()

    def close(self):
        """Cancels what still runs (containers and process jobs outlive neurod), waits for
        neurod to remove its containers, stops it; removes what a failed case left behind."""
        try:
            if self.d.proc and self.d.proc.poll() is None:
                try:
                    ids = self.admin.neuro("ps", "-q", expect=None).stdout.split()
                    if ids:
                        self.admin.neuro("kill", *ids, expect=None)
                    deadline = time.time() + 20
                    while self.runtime == "docker" and self.containers() and time.time() < deadline:
                        time.sleep(0.2)
                finally:
                    assert self.d.stop() == 0, "neurod did not exit 0 on SIGTERM"
        finally:
            if self.runtime == "docker":
                left = self.containers()
                if left:
                    subprocess.run(["podman", "--url", "unix://" + podman_file("socket"), "rm", "-f", "-t", "0", *left],
                                   capture_output=True, timeout=120)


# --- docker, SQLite: the everyday verbs ------------------------------------------------

def test_run_ps_status_logs_kill_on_docker(tmp):
    c = Cluster(tmp, "docker", users=("alice", "bob", "carol"))
    try:
        alice, bob, carol, admin = c.alice, c.bob, c.carol, c.admin
        img = image()

        # neuro run follows the job: log on stdout, status changes on stderr, the job's exit code.
        r = alice.neuro("run", "--preset", "cpu-large", "--name", "train-1", "--tag", "exp=3", "-e", "LR=0.1", img, "--",
                        "sh", "-c", 'echo hi; echo "id=$NEURO_JOB_ID name=$NEURO_JOB_NAME owner=$NEURO_JOB_OWNER '
                        'project=$NEURO_JOB_PROJECT preset=$NEURO_JOB_PRESET cluster=$NEURO_JOB_CLUSTER lr=$LR"; exit 3',
                        expect=3)
        m = re.search(r"Job ID: (job-[0-9a-f]+)\s+Name: train-1", r.stderr)
        assert m, r.stderr
        train = m.group(1)
        assert r.stdout == (f"hi\nid={train} name=train-1 owner=alice project=alice preset=cpu-large cluster=e2e "
                            "lr=0.1\n"), r.stdout
        for line in ("pending Creating", "running", "failed Error"):
            assert re.search(rf"^{line}", r.stderr, re.M), (line, r.stderr)
        assert re.search(rf"neuro: job {train} failed Error.*exit code 3", r.stderr), r.stderr
        assert "\nhi\n" not in "\n" + r.stderr, r.stderr  # the log goes to stdout only

        # neuro status, by name: the spec, the outcome and the history with reasons.
        st = alice.neuro("status", "train-1").stdout
        assert re.search(rf"^Job:\s+{train}$", st, re.M), st
        assert re.search(r"^Status:\s+failed Error", st, re.M), st
        assert re.search(r"^Exit code:\s+3$", st, re.M), st
        assert re.search(r"^Preset:\s+cpu-large$", st, re.M), st
        assert re.search(r"^Tags:\s+exp=3$", st, re.M), st
        assert re.search(r"^Env:\s+LR=0.1$", st, re.M), st
        assert re.search(r"^TIME\s+STATUS\s+REASON\s+DESCRIPTION\s+EXIT CODE$", st, re.M), st
        assert re.search(r"^\S+\s+pending\s+Creating\s*$", st, re.M), st
        assert re.search(r"^\S+\s+running\s*$", st, re.M), st
        assert re.search(r"^\S+\s+failed\s+Error\s+exit code 3\s+3$", st, re.M), st
        j = alice.job("train-1")
        assert j["id"] == train and j["status"] == "failed" and j["history"]["reason"] == "Error", j
        assert j["history"]["exit_code"] == 3 and j["tags"] == ["exp=3"] and j["executor"] == "docker", j
        assert j["container"]["env"] == {"LR": "0.1"}, j["container"]
        assert [s["status"] for s in j["statuses"]][0] == "pending" and j["statuses"][-1]["status"] == "failed", j
        assert docker_starts(train) == 1

        # neuro logs: plain, with timestamps, and --since (Podman gives whole seconds).
        assert alice.logs("train-1") == r.stdout
        stamped = alice.logs(train, "--timestamps").splitlines()
        assert len(stamped) == 2, stamped
        for line in stamped:
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (hi|id=)", line), stamped
        twice = alice.detach("-n", "two-parts", img, "--", "sh", "-c", "echo early; sleep 2.5; echo late")
        alice.wait_finished(twice)
        stamped = alice.logs(twice, "--timestamps").splitlines()
        assert [s.split(" ", 1)[1] for s in stamped] == ["early", "late"], stamped
        late_second = stamped[1].split(" ", 1)[0][:19] + "Z"
        assert alice.logs("two-parts", "--since", late_second) == "late\n"
        assert alice.logs("two-parts", "--since", "1h") == "early\nlate\n"
        assert alice.logs("two-parts", "--since", "2100-01-01T00:00:00Z") == ""

        # --detach prints the id at once; neuro logs -f on a running job ends when it does.
        started = time.time()
        ticker = alice.detach("--name", "ticker", "--tag", "exp=4", "--tag", "kind=tick", img, "--", "sh", "-c",
                              "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done")
        assert time.time() - started < 5, "neuro run --detach waited for the job"
        assert alice.job(ticker)["status"] in ("pending", "running")
        alice.wait_status(ticker, "running")
        # Following starts mid-way: what was printed before, then the live lines, each once.
        alice.wait("ticker", lambda x: "tick 2\n" in alice.logs(x["id"]), what="two ticks logged")
        follow = alice.neuro("logs", "-f", "ticker")
        assert follow.stdout == "".join(f"tick {i}\n" for i in range(1, 7)), follow.stdout
        assert alice.job(ticker)["status"] == "succeeded", "neuro logs -f ended before the job"

        # Cancel: a followed job killed from elsewhere; several killed at once, by name and id.
        follower = alice.popen("run", "-n", "sleeper", "--tag", "exp=3", img, "--", "sh", "-c", "echo started; sleep 300")
        try:
            sleeper = alice.wait("sleeper", lambda x: x["status"] == "running" and alice.logs(x["id"]) == "started\n",
                                 what="running and logged")["id"]
            other = alice.detach(img, "sleep", "300")
            alice.wait_status(other, "running")

            # neuro ps: active only by default, -a, -s, -n, -t, --owner, --format, -q, -o json.
            ps = alice.neuro("ps").stdout
            assert ps.splitlines()[0].split() == ["ID", "NAME", "STATUS", "WHEN", "IMAGE", "OWNER", "COMMAND"], ps
            assert sleeper in ps and other in ps and train not in ps and ticker not in ps, ps
            assert re.search(rf"^{sleeper}\s+sleeper\s+running\s+", ps, re.M), ps
            assert set(alice.neuro("ps", "-q").stdout.split()) == {sleeper, other}
            everything = alice.neuro("ps", "-a", "-q").stdout.split()
            assert everything == [train, twice, ticker, sleeper, other], everything  # oldest first
            assert alice.neuro("ps", "-a", "-q", "--recent-first").stdout.split() == everything[::-1]
            assert alice.neuro("ps", "-s", "failed", "-q").stdout.split() == [train]
            assert set(alice.neuro("ps", "-s", "succeeded", "-s", "failed", "-q").stdout.split()) == {train, twice, ticker}
            assert alice.neuro("ps", "-s", "finished", "-n", "train-1", "-q").stdout.split() == [train]
            assert set(alice.neuro("ps", "-a", "-t", "exp=3", "-q").stdout.split()) == {train, sleeper}
            assert alice.neuro("ps", "-a", "-t", "exp=4", "-t", "kind=tick", "-q").stdout.split() == [ticker]
            assert alice.neuro("ps", "-a", "-t", "exp=3", "-t", "kind=tick", "-q").stdout == ""
            assert len(alice.neuro("ps", "-a", "--owner", "alice", "-q").stdout.split()) == 5
            assert len(alice.neuro("ps", "-a", "--owner", "ME", "-q").stdout.split()) == 5
            table = alice.neuro("ps", "-a", "--format", "id,name,status,exit_code,tags,restarts").stdout
            assert table.splitlines()[0].split() == ["ID", "NAME", "STATUS", "EXIT", "CODE", "TAGS", "RESTARTS"], table
            assert re.search(rf"^{train}\s+train-1\s+failed\s+3\s+exp=3\s+0$", table, re.M), table
            listed = alice.json("ps", "-a")
            assert [x["id"] for x in listed] == everything, listed
            assert alice.neuro("job", "ls", "-q").stdout == alice.neuro("ps", "-q").stdout

            # Two users: bob neither sees nor touches alice's jobs.
            assert bob.neuro("ps", "-a", "-q").stdout == ""
            assert bob.neuro("ps", "-a", "--owner", "alice", "-q").stdout == ""
            for args in (("status", sleeper), ("status", "sleeper"), ("logs", sleeper), ("kill", sleeper),
                         ("bump-life-span", sleeper, "1h")):
                r = bob.neuro(*args, expect=5)
                assert "404" in r.stderr, (args, r.stderr)
            assert alice.job(sleeper)["status"] == "running"
            # The admin sees everyone's.
            assert set(admin.neuro("ps", "--owner", "alice", "-q").stdout.split()) == {sleeper, other}

            # neuro bump-life-span: 1d (the default) + 2h.
            r = alice.neuro("bump-life-span", "sleeper", "2h")
            assert re.search(rf"^Life span of {sleeper}: 1d2h\.$", r.stdout, re.M), r.stdout
            assert alice.job(sleeper)["max_run_time_minutes"] == 24 * 60 + 120

            r = alice.neuro("kill", "sleeper", other)
            assert r.stdout.split() == ["sleeper", other], r.stdout
            out, err = follower.communicate(timeout=60)
            assert follower.returncode == 125, (follower.returncode, out, err)
            assert out == "started\n", out
            assert re.search(r"^cancelled UserRequested", err, re.M), err
            assert f"neuro: job {sleeper} cancelled UserRequested" in err, err
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        for ref in (sleeper, other):
            j = alice.job(ref)
            assert j["status"] == "cancelled" and j["history"]["reason"] == "UserRequested", j
        assert alice.neuro("ps", "-q").stdout == ""
        # Killing a finished job changes nothing; an unknown one is an error (5), the rest are still tried.
        r = alice.neuro("kill", "no-such-job", train, expect=5)
        assert "cannot kill no-such-job" in r.stderr and r.stdout.split() == [train], r
        assert alice.job(train)["status"] == "failed"

        # OOM: 200 MB in a 32 MiB job.
        r = alice.neuro("run", "--memory", "32MiB", "--cpu", "0.5", img, "--", "sh", "-c",
                        "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived", expect=137)
        assert "survived" not in r.stdout
        assert re.search(r"^failed OOMKilled", r.stderr, re.M), r.stderr
        oom = re.search(r"Job ID: (job-[0-9a-f]+)", r.stderr).group(1)
        j = alice.job(oom)
        assert j["status"] == "failed" and j["history"]["reason"] == "OOMKilled" and j["history"]["exit_code"] == 137, j

        # Restart policy: on-failure restarts a failing job (counted) until it is killed.
        flaky = alice.detach("--restart", "on-failure", "-n", "flaky", img, "--", "sh", "-c", "echo attempt; exit 1")
        j = alice.wait(flaky, lambda x: x["history"]["restarts"] >= 2, what="two restarts")
        assert j["restart_policy"] == "on-failure" and j["status"] in ("pending", "running"), j
        alice.neuro("kill", "flaky")
        j = alice.wait_finished(flaky)
        assert j["status"] == "cancelled" and j["history"]["reason"] == "UserRequested", j
        assert sum(1 for s in j["statuses"] if s["reason"] == "Restarting") >= 2, j["statuses"]
        attempts = alice.logs(flaky).count("attempt\n")
        assert attempts >= 2 and attempts == docker_starts(flaky), (attempts, docker_starts(flaky))
        assert re.search(r"^Restarts:\s+[2-9]", alice.neuro("status", flaky).stdout, re.M)

        # Schedule timeout: one job holds both CPUs of the node, the next gives up after 2 s.
        holder = alice.detach("--cpu", "2", "--memory", "64MiB", img, "sleep", "300")
        alice.wait_status(holder, "running")
        r = alice.neuro("run", "--schedule-timeout", "2s", "-n", "waiter", img, "true", expect=125)
        assert re.search(r"^pending Scheduling", r.stderr, re.M), r.stderr
        assert re.search(r"neuro: job job-[0-9a-f]+ failed ScheduleTimeout", r.stderr), r.stderr
        j = alice.job("waiter")
        assert j["status"] == "failed" and j["history"]["reason"] == "ScheduleTimeout", j
        assert j["history"]["exit_code"] is None and j["schedule_timeout"] == 2, j
        assert any("waiting for resources" in s["description"] for s in j["statuses"]), j["statuses"]
        assert re.search(r"^\S+\s+failed\s+ScheduleTimeout", alice.neuro("status", "waiter").stdout, re.M)
        alice.neuro("kill", holder)

        # GPUs on a node without any: refused at once with the reason, nothing created.
        before = alice.neuro("ps", "-a", "-q").stdout
        for args in (("-s", "gpu-1"), ("--cpu", "1", "--memory", "64MiB", "--gpu", "1")):
            r = alice.neuro("run", *args, img, "true", expect=5)
            assert "no GPUs" in r.stderr and "HTTP 400" in r.stderr, r.stderr
        # NOTE for the lead: `neuro run --gpu 1 IMG` alone is refused too, but with
        # "resources.cpu: required with explicit resources", not the GPU reason (the server
        # wants cpu and memory with explicit resources, and the CLI sends only nvidia_gpu).
        alice.neuro("run", "--gpu", "1", img, "true", expect=5)
        assert alice.neuro("ps", "-a", "-q").stdout == before

        # The running-jobs quota: carol may run one job; a second is refused (4), or queued
        # with --wait-for-seat until the first ends.
        admin.neuro("admin", "quota", "set", "--user", "carol", "--max-running-jobs", "1")
        first = carol.detach(img, "sleep", "300")
        r = carol.neuro("run", img, "true", expect=4)
        assert "running-jobs quota" in r.stderr and "--wait-for-seat" in r.stderr and "HTTP 403" in r.stderr, r.stderr
        assert carol.neuro("ps", "-a", "-q").stdout.split() == [first]
        queued = carol.detach("--wait-for-seat", img, "echo", "queued")
        carol.wait(queued, lambda x: "running-jobs quota" in x["history"]["description"], what="waiting for quota")
        assert carol.job(queued)["status"] == "pending"
        carol.neuro("kill", first)
        j = carol.wait_finished(queued)
        assert j["status"] == "succeeded", j
        assert carol.logs(queued) == "queued\n"
    finally:
        c.close()


def test_life_span_on_docker(tmp):
    """--life-span 1m on a `sleep 300` job: cancelled, LifeSpanEnded, after about a minute of running."""
    c = Cluster(tmp, "docker", users=("alice",))
    try:
        r = c.alice.neuro("run", "--life-span", "1m", "-n", "short-lived", image(), "--", "sh", "-c",
                          "echo up; sleep 300", expect=125, timeout=150)
        assert r.stdout == "up\n", r.stdout
        assert re.search(r"^cancelled LifeSpanEnded", r.stderr, re.M), r.stderr
        j = c.alice.job("short-lived")
        assert j["status"] == "cancelled" and j["history"]["reason"] == "LifeSpanEnded", j
        assert j["max_run_time_minutes"] == 1, j
        assert 59 <= j["history"]["run_time_seconds"] <= 75, j["history"]
    finally:
        c.close()


# --- malformed specs --------------------------------------------------------------------

def test_malformed_specs_are_refused(tmp):
    c = Cluster(tmp, "docker", users=("alice",))
    try:
        alice, img = c.alice, image()

        def refused(args, code, *words):
            r = alice.neuro("run", *args, img, "true", expect=code)
            for w in words:
                assert w in r.stderr, (args, w, r.stderr)

        # The server refuses (400 naming the field: exit 5; an unknown preset is 404: exit 5)…
        refused(("-n", "Bad_Name"), 5, "name:", "HTTP 400")
        refused(("-n", "job-123"), 5, "name:", "HTTP 400")
        refused(("-n", "ab"), 5, "name:", "HTTP 400")
        refused(("-s", "no-such-preset"), 5, "preset_name", "no preset 'no-such-preset'", "HTTP 404")
        refused(("--tag", "a b"), 5, "tags[0]", "HTTP 400")
        big = os.path.join(tmp, "big.env")
        with open(big, "w") as f:
            f.write("BIG=" + "x" * (200 * 1024) + "\n")  # too long for argv: through --env-file
        refused(("--env-file", big), 5, "env:", "HTTP 400")
        many = os.path.join(tmp, "many.env")
        with open(many, "w") as f:
            f.write("".join(f"V{i}=1\n" for i in range(1001)))
        refused(("--env-file", many), 5, "env:", "HTTP 400")
        # …and the CLI refuses what it can tell is wrong before sending it (exit 2).
        refused(("--cpu", "-1"), 2, "--cpu")
        refused(("--cpu=-0.5",), 2, "--cpu")
        refused(("--memory", "0"), 2, "--memory")
        refused(("-w", "relative/dir"), 2, "--workdir")
        refused(("-s", "cpu-small", "--cpu", "1"), 2, "--preset")
        # The server refuses them too when sent as they are.
        body = {"image": img, "command": ["true"]}
        for extra, field in (({"resources": {"cpu": -1, "memory": 2**30}}, "resources.cpu"),
                             ({"resources": {"cpu": 1, "memory": -5}}, "resources.memory"),
                             ({"name": "Bad_Name"}, "name"),
                             ({"env": {"BIG": "x" * (200 * 1024)}}, "env"),
                             ({"working_dir": "relative"}, "working_dir"),
                             ({"max_run_time_minutes": -1}, "max_run_time_minutes")):
            status, text = alice.http("POST", "/api/v1/jobs", dict(body, **extra))
            assert status == 400 and field in text, (extra.keys(), status, text[:300])
        status, text = alice.http("POST", "/api/v1/jobs", raw=b"{not json")
        assert status == 400, (status, text)

        # Nothing was created, nothing launched.
        assert alice.neuro("ps", "-a", "-q").stdout == ""
        assert c.admin.neuro("ps", "-a", "-q").stdout == ""
        assert "jobs: launching" not in c.d.output()
    finally:
        c.close()


# --- the process executor -----------------------------------------------------------------

def test_process_executor_flows(tmp):
    c = Cluster(tmp, "process", users=("alice", "bob"))
    try:
        alice = c.alice
        # The image is not used by the process runtime; the host's sh runs in the sandbox.
        r = alice.neuro("run", "-n", "proc-1", "-e", "LR=0.1", "--tag", "exp=3", "none", "--", "sh", "-c",
                        'echo hi; echo "id=$NEURO_JOB_ID name=$NEURO_JOB_NAME owner=$NEURO_JOB_OWNER lr=$LR"')
        m = re.search(r"Job ID: (job-[0-9a-f]+)", r.stderr)
        assert m, r.stderr
        ok = m.group(1)
        assert r.stdout == f"hi\nid={ok} name=proc-1 owner=alice lr=0.1\n", r.stdout
        j = alice.job("proc-1")
        assert j["status"] == "succeeded" and j["history"]["reason"] == "Completed", j
        assert j["history"]["exit_code"] == 0 and j["executor"] == "process", j
        assert alice.logs("proc-1") == r.stdout

        r = alice.neuro("run", "-n", "proc-3", "none", "--", "sh", "-c", "echo bye; exit 3", expect=3)
        assert r.stdout == "bye\n"
        j = alice.job("proc-3")
        assert j["status"] == "failed" and j["history"]["reason"] == "Error" and j["history"]["exit_code"] == 3, j
        assert re.search(r"^Exit code:\s+3$", alice.neuro("status", "proc-3").stdout, re.M)

        r = alice.neuro("run", "--memory", "32MiB", "--cpu", "0.5", "none", "--", "sh", "-c",
                        "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived", expect=137)
        assert "survived" not in r.stdout and re.search(r"^failed OOMKilled", r.stderr, re.M), r
        oom = re.search(r"Job ID: (job-[0-9a-f]+)", r.stderr).group(1)
        assert alice.job(oom)["history"]["reason"] == "OOMKilled"

        ticker = alice.detach("-n", "ticker", "none", "--", "sh", "-c", "for i in 1 2 3 4; do echo tick $i; sleep 0.5; done")
        follow = alice.neuro("logs", "-f", ticker)
        assert follow.stdout == "".join(f"tick {i}\n" for i in range(1, 5)), follow.stdout
        assert alice.job(ticker)["status"] == "succeeded"

        sleeper = alice.detach("-n", "sleeper", "none", "--", "sh", "-c", "echo started; sleep 300")
        alice.wait(sleeper, lambda x: x["status"] == "running" and alice.logs(x["id"]) == "started\n",
                   what="running and logged")
        assert alice.neuro("ps", "-q").stdout.split() == [sleeper]
        assert c.bob.neuro("ps", "-a", "-q").stdout == ""
        c.bob.neuro("kill", "sleeper", expect=5)
        alice.neuro("bump-life-span", sleeper, "30m")
        assert alice.job(sleeper)["max_run_time_minutes"] == 24 * 60 + 30
        assert alice.neuro("kill", "sleeper").stdout.split() == ["sleeper"]
        j = alice.job(sleeper)
        assert j["status"] == "cancelled" and j["history"]["reason"] == "UserRequested", j
        assert alice.logs(sleeper) == "started\n"
        assert alice.neuro("ps", "-q").stdout == ""
    finally:
        c.close()


# --- volumes: storage and secrets in jobs ------------------------------------------------

def volumes(tmp, runtime):
    """The user story: data in storage (neuro cp), a secret (neuro secret add), and a job
    that sees the data read-only, writes its output to storage and gets the secret as env
    and as a file."""
    c = Cluster(tmp, runtime, users=("alice", "bob"))
    try:
        alice = c.alice
        img = "image:bb:1" if runtime == "docker" else "none"
        local = os.path.join(tmp, "dataset")
        os.makedirs(local)
        for name, content in (("a.txt", "one\n"), ("b.txt", "two\n")):
            with open(os.path.join(local, name), "w") as f:
                f.write(content)
        alice.neuro("cp", "-r", "-q", "-T", local, "storage:data")
        value = f"wandb-{runtime}-{time.time_ns()}"
        alice.neuro("secret", "add", "WANDB_KEY", "@-", input=value)
        script = ('ls /data > /out/list; test "$WANDB_KEY" = "$(cat /etc/key)" && echo secret-ok; '
                  'echo x 2>/dev/null > /data/x || echo data-read-only')
        volumes = ["-v", "storage:data:/data:ro", "-e", "WANDB_KEY=secret:WANDB_KEY", "-v", "secret:WANDB_KEY:/etc/key"]

        # As the story writes it, storage:out:/out is read-only (the default) and does not exist yet.
        r = alice.neuro("run", *volumes, "-v", "storage:out:/out", img, "--", "sh", "-c", script, expect=None)
        assert r.returncode != 0 and "CreateContainerConfigError" in r.stderr, (r.returncode, r.stdout, r.stderr)
        assert "storage volume storage://e2e/alice/out at /out" in r.stderr, r.stderr
        # Read-write, it is made and gets the list.
        r = alice.neuro("run", "-n", "vols", *volumes, "-v", "storage:out:/out:rw", img, "--", "sh", "-c", script)
        assert r.stdout == "secret-ok\ndata-read-only\n", r.stdout
        assert alice.neuro("cp", "storage:out/list", "-").stdout == "a.txt\nb.txt\n"
        assert open(os.path.join(c.d.data_dir, "storage", "alice", "out", "list")).read() == "a.txt\nb.txt\n"
        # Now that it exists, read-only: the job runs and its write fails.
        r = alice.neuro("run", *volumes, "-v", "storage:out:/out", img, "--", "sh", "-c", script)
        assert "/out/list: Read-only file system" in r.stdout and "secret-ok" in r.stdout, r.stdout

        j = alice.job("vols")
        assert j["status"] == "succeeded", j
        assert j["container"]["secret_env"] == {"WANDB_KEY": "secret://e2e/alice/WANDB_KEY"}, j["container"]
        assert value not in json.dumps(j) and value not in c.d.output()
        node = open(os.path.join(c.d.data_dir, "executor", "node-id")).read().strip()
        assert not os.path.exists(os.path.join("/dev/shm/neurod-secrets", node, j["id"]))

        # A secret that does not exist fails the job and says which.
        r = alice.neuro("run", "-n", "nokey", "-e", "T=secret:NOPE", img, "--", "true", expect=None)
        assert r.returncode != 0, r
        j = alice.job("nokey")
        assert j["status"] == "failed" and j["history"]["reason"] == "CreateContainerConfigError", j["history"]
        assert "secret NOPE does not exist in project alice" in j["history"]["description"], j["history"]
        # bob cannot mount alice's storage.
        r = c.bob.neuro("run", "-v", "storage://e2e/alice/data:/data", img, "--", "true", expect=None)
        assert r.returncode != 0 and "storage://e2e/alice/data" in r.stderr, (r.returncode, r.stderr)
    finally:
        c.close()


def test_volumes_on_docker(tmp):
    volumes(tmp, "docker")


def test_volumes_on_process(tmp):
    volumes(tmp, "process")


# --- images from neurod's own registry ----------------------------------------------------

def podman_cli_env():
    """The podman CLI on the test service's storage and registries (podman.sh's files)."""
    return {"CONTAINERS_CONF": os.path.join(PODMAN_DIR, "containers.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(PODMAN_DIR, "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": os.path.join(PODMAN_DIR, "registries.conf")}


def test_job_runs_an_image_pushed_to_neurod(tmp):
    """neuro image push, then neuro run image:NAME:TAG: the engine pulls from neurod as the
    job's owner (a short-lived pull token), shown as Pulling; others are refused at
    submission; a missing image fails the job with ErrImagePull."""
    c = Cluster(tmp, "docker", users=("alice", "bob"), image_registry="")
    try:
        alice = c.alice
        tag = f"t{time.time_ns()}"
        r = run([NEURO, "image", "push", image(), f"image:pushed:{tag}"], env=dict(alice.env, **podman_cli_env()),
                timeout=300)
        assert r.returncode == 0, (r.stdout, r.stderr)
        # The engine has no image of that name: it pulls it from neurod.
        r = alice.neuro("run", "-n", "frompush", f"image:pushed:{tag}", "--", "sh", "-c", "echo from-registry",
                        timeout=300)
        assert r.stdout == "from-registry\n", (r.stdout, r.stderr)
        j = alice.job("frompush")
        assert j["status"] == "succeeded", j
        assert any(s.get("reason") == "Pulling" for s in j["statuses"]), j["statuses"]
        assert "ndsc_" not in c.d.output(), "a pull token reached the log"

        # bob may not read alice's image: refused before anything runs.
        r = c.bob.neuro("run", f"image:/alice/pushed:{tag}", "--", "true", expect=None)
        assert r.returncode != 0 and "image://e2e/alice/pushed" in r.stderr, (r.returncode, r.stderr)
        # Shared read-only, he may run it (his own pull token).
        alice.neuro("acl", "grant", "image:pushed", "bob", "read")
        r = c.bob.neuro("run", f"image:/alice/pushed:{tag}", "--", "sh", "-c", "echo bob-ran", timeout=300)
        assert r.stdout == "bob-ran\n", (r.stdout, r.stderr)

        # A tag that was never pushed.
        r = alice.neuro("run", "-n", "missing", "image:pushed:never", "--", "true", expect=None, timeout=300)
        assert r.returncode != 0
        j = alice.job("missing")
        assert j["status"] == "failed" and j["history"]["reason"] == "ErrImagePull", j["history"]
        # Malformed names are refused at submission.
        r = alice.neuro("run", "image:Bad:1", "--", "true", expect=None)
        assert r.returncode != 0 and "image:" in r.stderr, r.stderr
    finally:
        c.close()


# --- durability: neurod killed with SIGKILL while jobs run ------------------------------

def durability(tmp, runtime, database_url):
    c = Cluster(tmp, runtime, database_url, users=("alice",))
    follower = None
    try:
        alice = c.alice
        img = image() if runtime == "docker" else "none"
        # Timeline: the four jobs run and have logged; SIGKILL; "quick" ends while neurod is
        # down; neurod comes back well before the others end.
        quick_end = time.time() + 12
        slow_end = quick_end + 10
        expected = {"quick": ("succeeded", 0), "slow-zero": ("succeeded", 0), "on-failure": ("succeeded", 0),
                    "slow-three": ("failed", 3)}
        ids = {
            "quick": alice.detach("-n", "quick", img, "--", "sh", "-c", lines_script("quick", quick_end, 0)),
            "slow-zero": alice.detach("-n", "slow-zero", img, "--", "sh", "-c", lines_script("slow-zero", slow_end, 0)),
            # A restart policy must not start a job again that neurod merely lost sight of.
            "on-failure": alice.detach("-n", "on-failure", "--restart", "on-failure", img, "--", "sh", "-c",
                                       lines_script("on-failure", slow_end, 0)),
        }
        # Followed by `neuro run`, which loses neurod and says how to pick the job up again.
        follower = alice.popen("run", "-n", "slow-three", img, "--", "sh", "-c",
                               lines_script("slow-three", slow_end, 3))
        ids["slow-three"] = alice.wait("slow-three", lambda x: True, what="submitted")["id"]
        while True:
            jobs = {name: alice.job(job_id)["status"] for name, job_id in ids.items()}
            if all(status == "running" for status in jobs.values()):
                break
            assert time.time() < quick_end - 3, f"this machine is too slow for the timeline: {jobs}"
            time.sleep(0.2)
        # Better in the middle of the stored logs (the docker runtime stores lines a few
        # seconds late), but before "quick" ends.
        running_at = time.time()
        while not alice.logs(ids["slow-zero"]) and time.time() < min(running_at + 5, quick_end - 2):
            time.sleep(0.2)
        time.sleep(0.3)
        assert time.time() < quick_end - 1, "this machine is too slow for the timeline"

        c.sigkill()
        killed_at = time.time()
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 3, (follower.returncode, out, err)
        assert f"neuro logs -f {ids['slow-three']}" in err, err
        check_lines("slow-three", out.splitlines(), complete=False)
        time.sleep(max(0.0, max(killed_at + 2, quick_end + 2) - time.time()))
        restarted_at = time.time()
        c.restart()

        # neuro logs -f picks a running job up again and ends when it does.
        follow = alice.neuro("logs", "-f", "slow-zero")
        check_lines("slow-zero", follow.stdout.splitlines())
        for name, job_id in ids.items():
            status, code = expected[name]
            j = alice.wait_finished(job_id, timeout=60)
            assert j["status"] == status and j["history"]["exit_code"] == code, (name, j)
            assert j["history"]["restarts"] == 0, (name, j["history"])
            running = [s for s in j["statuses"] if s["status"] == "running"]
            assert len(running) == 1, (name, j["statuses"])
            check_lines(name, alice.logs(job_id).splitlines())
            assert c.launches(job_id) == 1, (name, c.launches(job_id))
            # The scenario itself: "quick" ended while neurod was down, the others after it came back.
            finished = iso_seconds(j["history"]["finished_at"])
            assert (finished < restarted_at) == (name == "quick"), (name, j["history"], restarted_at)
            if runtime == "docker":
                assert docker_starts(job_id) == 1, (name, docker_starts(job_id))
        assert "re-adopting" in c.d.output(), tail(c.d.output())
        assert alice.neuro("ps", "-q").stdout == ""
        r = alice.neuro("status", "slow-three")
        assert re.search(r"^Exit code:\s+3$", r.stdout, re.M), r.stdout
    finally:
        if follower and follower.poll() is None:
            follower.kill()
            follower.wait()
        c.close()


def test_durability_docker_sqlite(tmp):
    durability(tmp, "docker", "sqlite:neurod.db")


def test_durability_process_sqlite(tmp):
    durability(tmp, "process", "sqlite:neurod.db")


def with_pg(fn):
    def wrapped(tmp):
        url, drop = create_pg_database()
        try:
            fn(tmp, url)
        finally:
            drop()
    return wrapped


def basic_run(tmp, url, runtime):
    c = Cluster(tmp, runtime, url, users=("alice",))
    try:
        img = image() if runtime == "docker" else "none"
        r = c.alice.neuro("run", "-n", "basic", "-e", "X=1", img, "--", "sh", "-c", 'echo "x=$X"; exit 3', expect=3)
        assert r.stdout == "x=1\n", r.stdout
        j = c.alice.job("basic")
        assert j["status"] == "failed" and j["history"]["exit_code"] == 3, j
        assert c.alice.neuro("ps", "-a", "-q").stdout.split() == [j["id"]]
    finally:
        c.close()


def test_basic_run_docker_postgresql(tmp):
    with_pg(lambda t, url: basic_run(t, url, "docker"))(tmp)


def test_durability_docker_postgresql(tmp):
    with_pg(lambda t, url: durability(t, "docker", url))(tmp)


def test_durability_process_postgresql(tmp):
    with_pg(lambda t, url: durability(t, "process", url))(tmp)


# --- runner ---------------------------------------------------------------------------

def run_case(t):
    tmp = tempfile.mkdtemp(prefix="neurod-e2e-jobs-")
    _case.clusters = []
    started = time.time()
    report = ""
    ok = False
    try:
        t(tmp)
        ok = True
    except Exception:
        report = traceback.format_exc()
        for c in _case.clusters:
            report += c.diagnostics() + "\n"
            try:
                c.close()
            except Exception:
                pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ok, time.time() - started, report


def main(tests, workers=3):
    """Runs the cases concurrently (the slow ones first), each in its own temp dir."""
    passed = failed = 0
    begun = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_case, t): t for t in tests}
        for f in concurrent.futures.as_completed(futures):
            t = futures[f]
            ok, took, report = f.result()
            if ok:
                passed += 1
                print(f"ok   {t.__name__} ({took:.1f}s)", flush=True)
            else:
                failed += 1
                print(f"FAIL {t.__name__} ({took:.1f}s)\n{report}", flush=True)
    print(f"{passed} passed, {failed} failed in {time.time() - begun:.1f}s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    # Three at a time, the slowest first; the cases that start many containers at once are
    # spread out, for the Podman service answers slowly when it is busy.
    cases = [
        test_life_span_on_docker,  # a minute of waiting
        test_run_ps_status_logs_kill_on_docker,
        test_durability_process_sqlite,
        test_durability_docker_sqlite,
        test_malformed_specs_are_refused,
        test_durability_process_postgresql,
        test_process_executor_flows,
        test_durability_docker_postgresql,
        test_basic_run_docker_postgresql,
        test_volumes_on_docker,
        test_job_runs_an_image_pushed_to_neurod,
        test_volumes_on_process,
    ]
    # By hand: `python3 test_jobs_cli.py durability` runs the cases whose names contain a word given.
    wanted = sys.argv[1:]
    main([t for t in cases if not wanted or any(w in t.__name__ for w in wanted)])
