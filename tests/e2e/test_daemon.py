"""The real neurod: start, health on both backends, sd_notify, SIGTERM, CLI, promtool."""
import json
import os
import signal
import socket
import subprocess
import urllib.request

from harness import NEURO, Neurod, create_pg_database, main, run


def test_health_on_sqlite(tmp):
    d = Neurod(tmp).start()
    try:
        status, body = d.get_json("/api/v1/health")
        assert status == 200, body
        assert body["status"] == "ok"
        assert body["modules"]["system"]["healthy"] is True
        assert body["modules"]["system"]["details"]["database"]["dialect"] == "sqlite"
        assert os.path.exists(os.path.join(d.data_dir, "neurod.db"))
        assert "listening on http://127.0.0.1:" in d.output()
    finally:
        assert d.stop() == 0


def test_health_on_postgresql(tmp):
    url, drop = create_pg_database()
    try:
        d = Neurod(tmp, database_url=url).start()
        try:
            status, body = d.get_json("/api/v1/health")
            assert status == 200, body
            assert body["modules"]["system"]["details"]["database"]["dialect"] == "postgresql"
            # The password never reaches the log.
            assert "password" not in d.output().lower()
        finally:
            assert d.stop() == 0
    finally:
        drop()


def test_sd_notify_ready_and_stopping(tmp):
    sock_path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    d = Neurod(tmp, env={"NOTIFY_SOCKET": sock_path}).start()
    ready = sock.recv(4096).decode()
    assert "READY=1" in ready, ready
    assert f"MAINPID={d.proc.pid}" in ready
    d.proc.send_signal(signal.SIGTERM)
    stopping = sock.recv(4096).decode()
    assert "STOPPING=1" in stopping, stopping
    assert d.proc.wait(20) == 0
    assert "draining" in d.output()


def test_sigint_stops_cleanly_and_restarts_on_same_data(tmp):
    d = Neurod(tmp).start()
    assert d.stop(signal.SIGINT) == 0
    # A second start reuses the data dir and the applied migrations.
    d2 = Neurod(tmp).start()
    try:
        assert d2.get_json("/api/v1/ping")[0] == 200
        assert "applied migration" not in d2.output()
    finally:
        d2.stop()


def test_two_daemons_cannot_share_a_data_dir(tmp):
    d = Neurod(tmp).start()
    try:
        other = Neurod(tmp, name="second.yaml")
        r = run([os.environ["NEUROD_BIN"], "--config", other.config], timeout=30)
        assert r.returncode == 1, r
        assert "another neurod" in r.stdout + r.stderr
    finally:
        d.stop()


def test_neuro_cli_against_the_daemon(tmp):
    d = Neurod(tmp).start()
    try:
        env = {"NEURO_CONFIG": os.path.join(tmp, "neuro.yaml")}
        r = run([NEURO, "--url", d.url, "health"], env=env)
        assert r.returncode == 0, r
        assert "system" in r.stdout
        r = run([NEURO, "--url", d.url, "-o", "json", "health"], env=env)
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["status"] == "ok"
        r = run([NEURO, "--url", d.url, "version"], env=env)
        assert r.returncode == 0 and "0.1.0" in r.stdout, r
    finally:
        d.stop()
    # Unreachable server: a clear message and exit code 3.
    r = run([NEURO, "--url", d.url, "health"], env=env)
    assert r.returncode == 3, r
    assert "cannot connect to" in r.stderr, r.stderr


def test_metrics_pass_promtool(tmp):
    d = Neurod(tmp).start()
    try:
        for path in ["/api/v1/ping", "/api/v1/health", "/nope", "/api/v1/version"]:
            d.get(path)
        status, headers, body = d.get("/metrics")
        assert status == 200
        for name in ["neurod_http_requests_total", "neurod_http_request_duration_seconds_bucket",
                     "neurod_http_requests_in_flight", "process_resident_memory_bytes", "process_cpu_seconds_total",
                     "process_open_fds", "neurod_db_pool_sessions"]:
            assert name in body, name
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr
    finally:
        d.stop()


def test_access_log_line_per_request(tmp):
    d = Neurod(tmp).start()
    try:
        d.get("/api/v1/ping", headers={"X-Request-Id": "e2e-req-1"})
    finally:
        d.stop()
    lines = [l for l in d.output().splitlines() if "e2e-req-1" in l]
    assert len(lines) == 1, lines
    assert "GET /api/v1/ping 200" in lines[0], lines[0]


def test_tls_listener(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    d = Neurod(tmp)
    with open(d.config, "w") as f:  # tls goes under http, so the config is written whole
        f.write(f"data_dir: {d.data_dir}\nhttp:\n  listen: 127.0.0.1:0\n  tls:\n    cert: {cert}\n    key: {key}\n")
    d.start()
    try:
        assert d.url.startswith("https://"), d.url
        import ssl
        ctx = ssl.create_default_context(cafile=cert)
        with urllib.request.urlopen(d.url + "/api/v1/ping", context=ctx, timeout=10) as r:
            assert json.loads(r.read())["pong"] is True
    finally:
        d.stop()


if __name__ == "__main__":
    main([test_health_on_sqlite, test_health_on_postgresql, test_sd_notify_ready_and_stopping,
          test_sigint_stops_cleanly_and_restarts_on_same_data, test_two_daemons_cannot_share_a_data_dir,
          test_neuro_cli_against_the_daemon, test_metrics_pass_promtool, test_access_log_line_per_request,
          test_tls_listener])
