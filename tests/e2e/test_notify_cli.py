"""Notifications end to end: the real neurod (process executor) and the real neuro CLI on
SQLite and PostgreSQL, a real SMTP server (aiosmtpd, Debian's python3-aiosmtpd, run as
/usr/bin/python3 -m aiosmtpd) that receives the email of a failed job, a local HTTP server
that receives the signed webhook and checks the signature, `neuro notify set/ls/rm/test/log`,
and a delivery that waits for its receiver across a SIGKILL of neurod and is sent exactly
once after the restart."""
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import mailbox
import os
import re
import subprocess
import threading
import time

from harness import NEURO, Neurod, create_pg_database, free_port, main, run

AUTH_YAML = "  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"


def node_yaml(smtp_port):
    return (
        "modules:\n" + AUTH_YAML +
        "  executor:\n    runtime: process\n    stop_grace: 2s\n    capacity: {cpu: 2, memory: 4GiB, gpus: 0}\n"
        "  jobs:\n    restart_backoff: 200ms\n"
        "  notifications:\n    retry_initial: 200ms\n    retry_max: 1s\n    max_attempts: 100\n"
        "    poll_interval: 100ms\n"
        f"    email:\n      url: smtp://127.0.0.1:{smtp_port}\n      from: neurod@e2e.example\n"
        "presets:\n  - {name: cpu-small, cpu: 1, memory: 256MiB}\n"
    )


def wait_for(what, check, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class SmtpSink:
    """aiosmtpd writing every message into a Maildir."""

    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "maildir")
        self.log = open(os.path.join(tmp, "smtp.log"), "w")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
                                      "-c", "aiosmtpd.handlers.Mailbox", self.dir],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        import socket
        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for("the SMTP sink", up)

    def messages(self):
        if not os.path.isdir(self.dir):
            return []
        return [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in mailbox.Maildir(self.dir)]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Hook:
    """A webhook receiver on 127.0.0.1 that records every POST."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.got = []
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = None
        self.handler = H

    def start(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


def verify(secret, headers, body):
    ts = headers["x-neurod-timestamp"]
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, headers["x-neurod-signature"]), "bad webhook signature"
    assert abs(time.time() - int(ts)) < 300


class User:
    def __init__(self, tmp, name):
        self.name = name
        self.env = {"NEURO_CONFIG": os.path.join(tmp, f"neuro-{name}.yaml"), "NEURO_TOKEN": "", "NEURO_URL": ""}

    def neuro(self, *args, input=None, expect=0):
        r = run([NEURO, *args], env=self.env, input=input)
        if expect is not None:
            assert r.returncode == expect, f"neuro {' '.join(args)} as {self.name}: exit {r.returncode} (wanted {expect})\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args):
        return json.loads(self.neuro("-o", "json", *args).stdout)


def failing_job(user, code=3):
    out = user.neuro("run", "--detach", "--preset", "cpu-small", "localhost/none:1", "--", "sh", "-c",
                     f"echo boom; exit {code}").stdout.strip()
    job = re.search(r"job-[0-9a-f]+", out).group(0)
    wait_for(f"job {job} to fail", lambda: user.json("status", job)["status"] == "failed")
    return job


def flows(tmp, database_url):
    sink = SmtpSink(tmp)
    hook = Hook().start()
    d = Neurod(tmp, extra_yaml=node_yaml(sink.port), database_url=database_url).start()
    late = Hook()
    try:
        admin, alice, bob = User(tmp, "admin"), User(tmp, "alice"), User(tmp, "bob")
        admin.neuro("login", d.url, "--token-stdin", input=open(os.path.join(d.data_dir, "auth", "admin.token")).read())
        admin.neuro("admin", "user", "add", "alice", "--email", "alice@example.com", "--password-stdin",
                    input="alice-secret-1\n")
        admin.neuro("admin", "user", "add", "bob", "--password-stdin", input="bob-secret-12\n")
        alice.neuro("login", d.url, "-u", "alice", "--password-stdin", input="alice-secret-1\n")
        bob.neuro("login", d.url, "-u", "bob", "--password-stdin", input="bob-secret-12\n")

        # set: an email for failures, and a webhook whose secret is printed once.
        out = alice.neuro("notify", "set", "--email", "alice@example.com", "--on", "failed").stdout
        assert "Subscribed nsub-" in out, out
        out = alice.neuro("notify", "set", "--webhook", hook.url(), "--on", "failed,succeeded,cannot-start").stdout
        secret = re.search(r"(whsec_[0-9a-f]{64})", out).group(1)
        hook_id = re.search(r"Subscribed (nsub-[0-9a-f]+): webhook", out).group(1)
        subs = alice.json("notify", "ls")
        assert len(subs) == 2, subs
        assert all("secret" not in s for s in subs)
        ls = alice.neuro("notify", "ls").stdout
        assert "failed,succeeded,cannot-start" in ls and "alice@example.com" in ls and secret not in ls, ls
        assert bob.json("notify", "ls") == []
        bob.neuro("notify", "rm", hook_id, expect=5)  # not his: 404
        alice.neuro("notify", "set", "--webhook", "ftp://x/", expect=5)
        alice.neuro("notify", "set", "--webhook", hook.url(), "--on", "exploded", expect=2)

        # A failed job: the email and the signed webhook.
        job = failing_job(alice)
        msgs = wait_for("the email", lambda: [m for m in sink.messages() if job in m["Subject"]])
        assert len(msgs) == 1, [m["Subject"] for m in sink.messages()]
        m = msgs[0]
        assert m["Subject"] == f"[neurod] Job {job} failed (Error, exit code 3)", m["Subject"]
        assert m["To"] == "alice@example.com" and m["From"] == "neurod@e2e.example"
        body = m.get_content()
        assert f"Job {job} is now failed." in body and "Exit code:   3" in body, body
        key = m["X-Neurod-Delivery"]
        assert re.fullmatch(r"[0-9a-f]{32}", key) and m["Message-ID"] == f"<{key}@e2e.example>", (key, m["Message-ID"])

        posts = wait_for("the webhook", lambda: [p for p in hook.got if json.loads(p[2])["data"].get("job_id") == job])
        path, headers, raw = posts[0]
        verify(secret, headers, raw)
        event = json.loads(raw)
        assert event["type"] == "job.status" and event["data"]["status"] == "failed" and event["data"]["exit_code"] == 3
        assert headers["idempotency-key"] == headers["x-neurod-delivery"] == event["delivery"]

        # test, log, rm.
        out = alice.neuro("notify", "test", hook_id).stdout
        assert "Queued a test notification" in out, out
        wait_for("the test webhook", lambda: any(json.loads(p[2])["type"] == "notification.test" for p in hook.got))
        verify(secret, *[(p[1], p[2]) for p in hook.got if json.loads(p[2])["type"] == "notification.test"][0])
        log = wait_for("a delivered log", lambda: [x for x in alice.json("notify", "log", "--limit", "50")
                                                    if x["type"] == "notification.test" and x["status"] == "delivered"])
        assert log[0]["attempts"] == 1
        table = alice.neuro("notify", "log").stdout
        assert "delivered" in table and "notification.test" in table and "job.status" in table, table
        alice.neuro("notify", "rm", hook_id)
        assert [s["id"] for s in alice.json("notify", "ls")] != [] and all(s["id"] != hook_id for s in alice.json("notify", "ls"))

        # SIGKILL between enqueue and delivery: the receiver is down, the delivery waits.
        out = alice.neuro("notify", "set", "--webhook", late.url(), "--on", "failed").stdout
        late_secret = re.search(r"(whsec_[0-9a-f]{64})", out).group(1)
        late_id = re.search(r"Subscribed (nsub-[0-9a-f]+): webhook", out).group(1)
        job2 = failing_job(alice, 4)
        waiting = wait_for("a failed attempt", lambda: [x for x in alice.json("notify", "log", "--subscription", late_id)
                                                         if x["status"] == "failed" and x["attempts"] >= 1])
        key2 = waiting[0]["idempotency_key"]
        d.proc.kill()
        d.proc.wait()
        late.start()
        d.start()
        alice.env["NEURO_URL"] = d.url  # a new port; the session token still holds
        posts = wait_for("the delivery after the restart", lambda: list(late.got))
        time.sleep(1.5)  # anything more would arrive by now (retries are 200 ms – 1 s apart)
        assert len(late.got) == 1, [json.loads(p[2])["id"] for p in late.got]
        path, headers, raw = late.got[0]
        verify(late_secret, headers, raw)
        assert json.loads(raw)["data"]["job_id"] == job2
        assert headers["idempotency-key"] == key2
        final = wait_for("delivered", lambda: [x for x in alice.json("notify", "log", "--subscription", late_id)
                                                if x["status"] == "delivered"])
        assert final[0]["idempotency_key"] == key2
        # The email subscription still works after the restart: one more failure, one more email.
        job3 = failing_job(alice, 5)
        wait_for("the email after the restart", lambda: [m for m in sink.messages() if job3 in m["Subject"]])
        assert len([m for m in sink.messages() if job in m["Subject"]]) == 1  # nothing sent twice
    except Exception:
        print(d.output()[-6000:])
        raise
    finally:
        d.stop()
        hook.stop()
        late.stop()
        sink.stop()


def test_notify_on_sqlite(tmp):
    flows(tmp, "sqlite:neurod.db")


def test_notify_on_postgresql(tmp):
    url, drop = create_pg_database()
    try:
        flows(tmp, url)
    finally:
        drop()


if __name__ == "__main__":
    main([test_notify_on_sqlite, test_notify_on_postgresql])
