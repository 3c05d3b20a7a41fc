#!/usr/bin/python3
"""Submit-to-running latency of neurod jobs, side by side with the bare engine.

Driven by bench/jobs/run.sh; standard library only (http.client, subprocess).

    latency.py docker  URL TOKEN_FILE JOBS SOCKET IMAGE   neurod (docker executor on Podman),
                                                          bare `podman run`, bare engine API
    latency.py process URL TOKEN_FILE JOBS                neurod (process executor), bare bwrap

JOBS rounds run one at a time; each round runs one of every target back to back, in a
shuffled order, with a pause before each, so all targets see the same machine state (and
neurod's job counts as done once its container is removed). While a bare target runs, a
thread polls neurod as the client does during a neurod job (Polling), so that the polling's
CPU falls on every target. Every target runs the same command,
`sh -c 'busybox adjtimex'`, which prints the wall clock (µs) at the moment the command
runs: "submit→exec" is that time minus the moment the client started (POST sent, or the
bare command spawned), the one figure that means the same thing for every target.

Figures per neurod job (ms):
  submit→running (client)   POST sent → first GET /jobs/{id} (polled every 5 ms) whose status
                            is no longer pending
  created→running (server)  statuses[running].transition_time − history.created_at (server
                            clocks, ms resolution; the docker executor stamps running when the
                            engine's start call returned, the process executor with the
                            mtime of the supervisor's pid file, written just before bwrap)
  submit→exec               see above
  submit→finished (client)  POST sent → first GET showing succeeded/failed
Bare targets: spawn → exec (from the command's output), create+start (engine API: both
calls returned), total (the command/calls returned).
"""
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import shutil
from datetime import datetime, timezone

CMD = ["sh", "-c", "busybox adjtimex"]
SETTLE_S = 0.05  # a pause before every measured step
POLL_S = float(os.environ.get("POLL_MS", "5")) / 1000  # how often the client polls a job


def pct(xs, p):
    """Linear-interpolated percentile (as numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def exec_time(text):
    """The wall clock printed by `busybox adjtimex` (seconds, float)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    s = re.search(r"time\.tv_sec:\s*(\d+)", text)
    u = re.search(r"time\.tv_usec:\s*(\d+)", text)
    if not s or not u:
        raise RuntimeError("no adjtimex output in: " + text[-500:])
    return int(s.group(1)) + int(u.group(1)) / 1e6


def iso_ms(s):
    """'2026-11-23T16:53:22.509Z' -> epoch seconds."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("d", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Api:
    """A keep-alive HTTP client (one connection, reopened when the server closes it)."""

    def __init__(self, make, headers=None):
        self.make = make
        self.headers = headers or {}
        self.conn = make()

    def call(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = self.make()
                if attempt:
                    raise


class Neurod:
    def __init__(self, url, token, image):
        self.url, self.token, self.image = url, token, image
        host, port = url.replace("http://", "").split(":")
        self.api = Api(lambda: http.client.HTTPConnection(host, int(port), timeout=60),
                       {"Authorization": "Bearer " + token})

    def job(self, i):
        """Runs one job; returns its figures in ms."""
        t0 = time.time()
        st, body = self.api.call("POST", "/api/v1/jobs",
                                 {"image": self.image, "command": CMD, "tags": ["latency"]})
        if st != 202:
            raise RuntimeError(f"submit: {st} {body[:300]!r}")
        jid = json.loads(body)["id"]
        t_run = None
        deadline = t0 + 60
        while True:
            time.sleep(POLL_S)
            st, body = self.api.call("GET", "/api/v1/jobs/" + jid)
            now = time.time()
            job = json.loads(body)
            s = job["status"]
            if s != "pending" and t_run is None:
                t_run = now
            if s in ("succeeded", "failed", "cancelled"):
                t_fin = now
                break
            if now > deadline:
                raise RuntimeError(f"job {jid} still {s} after 60 s: {job['history']}")
        if s != "succeeded":
            raise RuntimeError(f"job {jid} {s}: {job['history']}")
        created = iso_ms(job["history"]["created_at"])
        running = next(iso_ms(x["transition_time"]) for x in job["statuses"] if x["status"] == "running")
        finished = iso_ms(job["statuses"][-1]["transition_time"])
        st, log = self.api.call("GET", f"/api/v1/jobs/{jid}/log")
        t_exec = exec_time(log)
        return {
            "id": jid, "created": created, "running": running, "exec": t_exec,
            "submit_running_client": (t_run - t0) * 1e3,
            "created_running_server": (running - created) * 1e3,
            "submit_exec": (t_exec - t0) * 1e3,
            "submit_finished_client": (t_fin - t0) * 1e3,
            "created_finished_server": (finished - created) * 1e3,
        }


class Polling:
    """While a bare target runs, polls neurod for a finished job as often as the client polls
    a running one: the polling costs CPU that the engine feels on a small machine (about
    25 ms of a 550 ms create+start on 2 cores), so every target runs under it alike."""

    def __init__(self, nd, job_id):
        self.api = Neurod(nd.url, nd.token, nd.image).api
        self.path = "/api/v1/jobs/" + job_id

    def __enter__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            time.sleep(POLL_S)
            self.api.call("GET", self.path)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def bare_podman_run(sock, image):
    t0 = time.time()
    out = subprocess.run(
        ["podman", "--url", "unix://" + sock, "run", "--rm", "--ulimit", "nofile=1024:1024",
         "--ulimit", "nproc=4096:4096", "--memory", "256m", "--memory-swap", "256m", "--cpus", "1",
         "--pids-limit", "4096", image] + CMD,
        check=True, capture_output=True)
    t1 = time.time()
    return {"spawn_exec": (exec_time(out.stdout) - t0) * 1e3, "total": (t1 - t0) * 1e3}


def bare_engine_api(engine, image, i):
    """What the docker executor does, without neurod: create, start, wait, logs, remove."""
    body = {
        "Image": image, "Cmd": CMD, "Env": [f"NEURO_JOB_ID=bare-{i}"], "Tty": False,
        "OpenStdin": False, "AttachStdin": False,
        "Labels": {"io.neurod.bench": "bare"},
        "HostConfig": {"RestartPolicy": {"Name": "no"}, "Memory": 256 << 20, "MemorySwap": 256 << 20,
                       "NanoCpus": 1_000_000_000, "PidsLimit": 4096,
                       "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024},
                                   {"Name": "nproc", "Soft": 4096, "Hard": 4096}]},
    }
    t0 = time.time()
    st, r = engine.call("POST", f"/v1.41/containers/create?name=neurod-bench-bare-{i}", body)
    if st != 201:
        raise RuntimeError(f"create: {st} {r[:300]!r}")
    cid = json.loads(r)["Id"]
    st, r = engine.call("POST", f"/v1.41/containers/{cid}/start")
    if st not in (204, 304):
        raise RuntimeError(f"start: {st} {r[:300]!r}")
    t_started = time.time()
    # Polled like the docker executor and the neurod client do (podman 4.3's /wait answers
    # hundreds of ms late).
    while True:
        time.sleep(POLL_S)
        st, r = engine.call("GET", f"/v1.41/containers/{cid}/json")
        if json.loads(r)["State"]["Status"] in ("exited", "stopped"):
            break
    t_exited = time.time()
    st, logs = engine.call("GET", f"/v1.41/containers/{cid}/logs?stdout=1&stderr=1")
    engine.call("DELETE", f"/v1.41/containers/{cid}?force=1&v=1")
    return {"create_start": (t_started - t0) * 1e3, "spawn_exec": (exec_time(logs) - t0) * 1e3,
            "total": (t_exited - t0) * 1e3}


def bwrap_args(tmp, i):
    """The sandbox the process executor builds (process_runner.cpp: system_args, sandbox_for)."""
    a = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if os.geteuid() == 0:
        a += ["--cap-drop", "ALL"]
        for cap in ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                    "CAP_SETUID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                    "CAP_AUDIT_WRITE"]:
            a += ["--cap-add", cap]
    else:
        a += ["--unshare-user"]
    a += ["--ro-bind", "/usr", "/usr"]
    for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]:
        if os.path.islink(d):
            a += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            a += ["--ro-bind", d, d]
    for d in ["/opt", "/etc", "/sys", "/run/systemd/resolve"]:
        if os.path.isdir(d):
            a += ["--ro-bind", d, d]
    for f in ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"]:
        if os.path.exists(f):
            a += ["--ro-bind", "/dev/null", f]
    if os.path.isdir("/etc/neurod"):
        a += ["--tmpfs", "/etc/neurod"]
    a += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger",
          "/proc/sysrq-trigger", "--dev", "/dev"]
    a += ["--hostname", f"bare-{i}", "--tmpfs", "/dev/shm", "--bind", tmp, "/tmp", "--remount-ro", "/",
          "--chdir", "/", "--clearenv", "--setenv", "PATH",
          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "HOME", "/",
          "--setenv", "NEURO_JOB_ID", f"bare-{i}"]
    return a


def bare_bwrap(i):
    tmp = tempfile.mkdtemp(prefix="bwrap-bench-")
    try:
        t0 = time.time()
        out = subprocess.run(["bwrap"] + bwrap_args(tmp, i) + ["--"] + CMD, check=True, capture_output=True)
        t1 = time.time()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"spawn_exec": (exec_time(out.stdout) - t0) * 1e3, "total": (t1 - t0) * 1e3}


def add_launch_times(results, log_path):
    """From neurod's log: when the scheduler handed each job to the executor ("jobs: launching
    ID"), which splits created→running into neurod's own part and the executor's."""
    launched = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.match(r"(\S+Z) \w+\s+jobs: launching (job-\w+)", line)
            if m:
                launched[m.group(2)] = iso_ms(m.group(1))
    for r in results:
        t = launched.get(r["id"])
        if t is None:
            raise RuntimeError(f"no 'jobs: launching {r['id']}' in {log_path}")
        r["created_launching"] = (t - r["created"]) * 1e3
        r["launching_running"] = (r["running"] - t) * 1e3
        r["running_exec"] = (r["exec"] - r["running"]) * 1e3


def row(name, xs):
    return f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 90):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |"


def collect(results, key):
    return [r[key] for r in results]


def main():
    mode, url, token_file, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    token = open(token_file).read().strip()
    targets = {"neurod": []}
    if mode == "docker":
        sock, image = sys.argv[5], sys.argv[6]
        nd = Neurod(url, token, image)
        engine = Api(lambda: UnixHTTPConnection(sock))
        targets.update({"podman": [], "api": []})

        def neurod_job(i):
            r = nd.job(i)
            # neurod removes the container after it reports the exit: wait for that, so that
            # the removal does not land in the next target's measurement.
            path = "/v1.41/containers/neurod-" + r["id"] + "/json"
            deadline = time.time() + 30
            while engine.call("GET", path)[0] != 404 and time.time() < deadline:
                time.sleep(POLL_S)
            return r

        steps = {"neurod": neurod_job, "podman": lambda i: bare_podman_run(sock, image),
                 "api": lambda i: bare_engine_api(engine, image, i)}
        # Warm-up (not counted): page cache, the engine's image lookup, neurod's first job.
        idle = neurod_job(-1)["id"]
        for f in steps.values():
            f(-1)
        rng = random.Random(4)
        for i in range(jobs):
            # A fresh order every round: whatever one run leaves behind (conmon's
            # `podman container cleanup` after every exit) falls on every target alike.
            order = list(steps)
            rng.shuffle(order)
            for name in order:
                time.sleep(SETTLE_S)
                if name == "neurod":
                    targets[name].append(steps[name](i))
                else:
                    with Polling(nd, idle):
                        targets[name].append(steps[name](i))
    else:
        nd = Neurod(url, token, "image:bb:1")  # the process executor does not use the image
        targets["bwrap"] = []
        steps = {"neurod": nd.job, "bwrap": bare_bwrap}
        idle = nd.job(-1)["id"]
        for f in steps.values():
            f(-1)
        rng = random.Random(4)
        for i in range(jobs):
            order = list(steps)
            rng.shuffle(order)
            for name in order:
                time.sleep(SETTLE_S / 5)
                if name == "neurod":
                    targets[name].append(steps[name](i))
                else:
                    with Polling(nd, idle):
                        targets[name].append(steps[name](i))

    n = targets["neurod"]
    if os.environ.get("NEUROD_LOG"):
        add_launch_times(n, os.environ["NEUROD_LOG"])
    if mode == "docker":
        launch_what = "image inspect, remove-by-name, create, start"
        exec_what = "the command runs during the engine's start call"
    else:
        launch_what = "run dir, cgroups, supervisor spawned, its pid file written"
        exec_what = "shells joining the cgroups, bwrap setting up"
    print(f"{mode} executor, {jobs} jobs one at a time; ms")
    print()
    print("| figure | p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|")
    print(row(f"neurod {mode}: submit→running (client, 5 ms polls)", collect(n, "submit_running_client")))
    print(row(f"neurod {mode}: created→running (server timestamps)", collect(n, "created_running_server")))
    print(row(f"neurod {mode}: submit→exec", collect(n, "submit_exec")))
    if "created_launching" in n[0]:
        print(row(f"  of which created→launching (server: accept, commit, schedule)", collect(n, "created_launching")))
        print(row(f"  of which launching→running stamp (server: {launch_what})", collect(n, "launching_running")))
        print(row(f"  of which running stamp→exec ({exec_what})", collect(n, "running_exec")))
    print(row(f"neurod {mode}: submit→finished (client)", collect(n, "submit_finished_client")))
    print(row(f"neurod {mode}: created→finished (server timestamps)", collect(n, "created_finished_server")))
    comparisons = []
    if mode == "docker":
        p, a = targets["podman"], targets["api"]
        print(row("bare engine API: create+start returned", collect(a, "create_start")))
        print(row("bare engine API: create→exec", collect(a, "spawn_exec")))
        print(row("bare engine API: create→exited (inspect polled every 5 ms)", collect(a, "total")))
        print(row("bare `podman run --rm`: spawn→exec", collect(p, "spawn_exec")))
        print(row("bare `podman run --rm`: total", collect(p, "total")))
        comparisons = [
            ("submit→running (client) vs API create+start", collect(n, "submit_running_client"), collect(a, "create_start")),
            ("created→running (server) vs API create+start", collect(n, "created_running_server"), collect(a, "create_start")),
            ("submit→exec vs API create→exec", collect(n, "submit_exec"), collect(a, "spawn_exec")),
            ("submit→exec vs `podman run` spawn→exec", collect(n, "submit_exec"), collect(p, "spawn_exec")),
            ("submit→finished (client) vs API create→exited", collect(n, "submit_finished_client"), collect(a, "total")),
            ("submit→finished (client) vs `podman run --rm` total", collect(n, "submit_finished_client"), collect(p, "total")),
        ]
    else:
        b = targets["bwrap"]
        print(row("bare bwrap: spawn→exec", collect(b, "spawn_exec")))
        print(row("bare bwrap: total", collect(b, "total")))
        comparisons = [
            ("submit→running (client) vs bwrap spawn→exec", collect(n, "submit_running_client"), collect(b, "spawn_exec")),
            ("created→running (server) vs bwrap spawn→exec", collect(n, "created_running_server"), collect(b, "spawn_exec")),
            ("submit→exec vs bwrap spawn→exec", collect(n, "submit_exec"), collect(b, "spawn_exec")),
            ("submit→finished (client) vs bwrap total", collect(n, "submit_finished_client"), collect(b, "total")),
        ]
    print()
    print("| neurod vs bare | added p50 | added p99 | ratio p50 | ratio p99 | per-round Δ p50 / p99 |")
    print("|---|---|---|---|---|---|")
    for name, x, y in comparisons:
        d = [a - b for a, b in zip(x, y)]  # the same round: the machine in the same state
        print(f"| {name} | {pct(x, 50) - pct(y, 50):+.1f} ms | {pct(x, 99) - pct(y, 99):+.1f} ms | "
              f"{pct(x, 50) / pct(y, 50):.2f} | {pct(x, 99) / pct(y, 99):.2f} | "
              f"{pct(d, 50):+.1f} / {pct(d, 99):+.1f} ms |")
    print()
    if os.environ.get("RAW_OUT"):
        with open(os.environ["RAW_OUT"], "w") as f:
            json.dump(targets, f)


if __name__ == "__main__":
    main()
