"""Metrics and telemetry end to end (issue 7 parts 2 and 6): a real neurod with private
/metrics, a real Prometheus (Debian's /usr/bin/prometheus) scraping it on loopback every
second with a bearer token from a credentials file, and the real `neuro top`. A busy job
(the process runtime, half a core) shows up in Prometheus as neurod_jobs{status="running"}
and as its own neurod_job_cpu_cores series, read back through Prometheus' HTTP API; when
it is cancelled, neurod_jobs{status="cancelled"} follows and `neuro top` ends."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import NEURO, Neurod, free_port, main, run

PROMETHEUS = "/usr/bin/prometheus"

NEUROD_YAML = (
    "modules:\n"
    "  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
    "  system:\n    metrics_public: false\n"
    "  executor:\n    runtime: process\n    stop_grace: 1s\n    capacity: {cpu: 2, memory: 4GiB, gpus: 0}\n"
    "  monitoring:\n    sample_interval: 1s\n    history_step: 1s\n"
    "presets:\n  - {name: half, cpu: 0.5, memory: 128MiB}\n"
)


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def wait_for(what, fn, timeout=60, interval=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, urllib.error.URLError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s; last: {last!r}")


class Prometheus:
    """A Prometheus scraping one neurod, in its own temp dir, on a free loopback port."""

    def __init__(self, tmp, target, token):
        self.dir = os.path.join(tmp, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(token)
        os.chmod(token_file, 0o600)
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: neurod\n"
                "    scrape_interval: 1s\n    scrape_timeout: 1s\n"
                "    metrics_path: /metrics\n"
                f"    authorization:\n      credentials_file: {token_file}\n"
                f"    static_configs:\n      - targets: ['{target}']\n"
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_for("prometheus ready", lambda: self.alive() and urllib.request.urlopen(self.url + "/-/ready", timeout=2).status == 200,
                 timeout=60)
        return self

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{open(self.log_path).read()[-3000:]}")
        return True

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def target_health(self):
        self.alive()
        targets = http_json(self.url + "/api/v1/targets")["data"]["activeTargets"]
        return targets[0]["health"] if targets else None, targets

    def query(self, expr):
        """The instant vector of a PromQL expression: [(labels, value)]."""
        self.alive()
        r = http_json(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert r["status"] == "success", r
        return [(s["metric"], float(s["value"][1])) for s in r["data"]["result"]]


def test_prometheus_scrapes_neurod_and_neuro_top_watches_a_job(tmp):
    d = Neurod(tmp, NEUROD_YAML).start()
    prom = None
    procs = []
    try:
        token = open(os.path.join(d.data_dir, "auth", "admin.token")).read().strip()
        status, _, _ = d.get("/metrics")
        assert status == 401, f"/metrics should be private here, got {status}"
        status, _, body = d.get("/metrics", {"Authorization": "Bearer " + token})
        assert status == 200 and "neurod_jobs{" in body, (status, body[:500])

        env = {"NEURO_URL": d.url, "NEURO_TOKEN": token, "NEURO_CONFIG": os.path.join(tmp, "neuro.yaml"),
               "NO_COLOR": "1"}
        r = run([NEURO, "run", "--detach", "busybox", "--", "sh", "-c", "while :; do :; done"], env=env)
        assert r.returncode == 0, r.stderr
        job = r.stdout.strip()

        def status_of():
            return json.loads(run([NEURO, "-o", "json", "status", job], env=env).stdout)["status"]

        wait_for("the job running", lambda: status_of() == "running", timeout=60, interval=0.2)

        # With a job's own series on it, /metrics still passes promtool's lint, silently.
        def job_series():
            s, _, text = d.get("/metrics", {"Authorization": "Bearer " + token})
            return text if s == 200 and f'job_id="{job}"' in text else None

        body = wait_for("the job's series on /metrics", job_series, timeout=20)
        check = run(["promtool", "check", "metrics"], input=body)
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr

        # neuro top, piped: a header, then one line per sample; -o json: one object per line.
        top = subprocess.Popen([NEURO, "top", job], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **env))
        top_json = subprocess.Popen([NEURO, "-o", "json", "top", job], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=dict(os.environ, **env))
        procs += [top, top_json]
        header = top.stdout.readline()
        if not header:
            top.kill()
            raise AssertionError(f"neuro top printed nothing: {top.communicate()[1]}\nneurod: {d.output()[-2000:]}")
        assert header.split()[:3] == ["TIME", "CPU", "MEMORY"], header
        rows = [top.stdout.readline().split() for _ in range(3)]
        for row in rows:
            assert len(row) >= 3 and 0.0 <= float(row[1]) <= 0.8, rows
        samples = [json.loads(top_json.stdout.readline()) for _ in range(3)]
        for s in samples:
            assert s["memory_bytes"] > 0 and "cpu" in s and "timestamp" in s, samples
        assert samples[2]["timestamp"] > samples[0]["timestamp"], samples

        # Prometheus: the target is up with the token, and the job's series come back.
        prom = Prometheus(tmp, d.url.split("://", 1)[1], token).start()
        wait_for("the neurod target up", lambda: prom.target_health()[0] == "up", timeout=60)
        running = wait_for("neurod_jobs{status=running} == 1",
                           lambda: [v for _, v in prom.query('neurod_jobs{status="running"}') if v == 1.0], timeout=30)
        assert running
        cpu = wait_for("the job's CPU in Prometheus",
                       lambda: [(m, v) for m, v in prom.query(f'neurod_job_cpu_cores{{job_id="{job}"}}') if v > 0.05],
                       timeout=30)
        labels = cpu[0][0]
        assert labels["owner"] == "admin" and labels["project"] == "admin", labels
        assert cpu[0][1] < 0.8, cpu
        mem = prom.query(f'neurod_job_memory_bytes{{job_id="{job}"}}')
        assert mem and mem[0][1] > 0, mem

        # Cancelled: Prometheus sees it, and both `neuro top` end by themselves.
        r = run([NEURO, "kill", job], env=env)
        assert r.returncode == 0, r.stderr
        wait_for("neurod_jobs{status=cancelled} == 1",
                 lambda: [v for _, v in prom.query('neurod_jobs{status="cancelled"}') if v == 1.0], timeout=30)
        for p in (top, top_json):
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0, (p.returncode, err)
            if p is top:
                assert "has finished" in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if prom:
            prom.stop()
        d.stop()


if __name__ == "__main__":
    main([test_prometheus_scrapes_neurod_and_neuro_top_watches_a_job])
