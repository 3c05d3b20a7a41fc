"""Helpers for the e2e tests: run the real neurod and neuro binaries in temp dirs.

Each test script is run by CTest with NEUROD_BIN, NEURO_BIN, NEUROD_SOURCE_DIR and
NEUROD_TEST_PG_DIR in the environment. Only the standard library is used.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid

NEUROD = os.environ.get("NEUROD_BIN", "build/src/app/neurod")
NEURO = os.environ.get("NEURO_BIN", "build/src/cli/neuro")
SOURCE_DIR = os.environ.get("NEUROD_SOURCE_DIR", os.getcwd())
PG_DIR = os.environ.get("NEUROD_TEST_PG_DIR", "")


def pg_admin_url():
    path = os.path.join(PG_DIR, "url")
    if not PG_DIR or not os.path.exists(path):
        raise RuntimeError(f"no PostgreSQL test server ({path} missing); CTest's postgres.start fixture starts one")
    return open(path).read().strip()


def create_pg_database():
    """Creates a fresh database on the test server; returns (url, drop)."""
    admin = pg_admin_url()
    name = "e2e_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    url = admin.rsplit("/", 1)[0] + "/" + name

    def drop():
        subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)

    return url, drop


class Neurod:
    """A neurod process on a free port with its own data dir."""

    def __init__(self, tmp, extra_yaml="", database_url="sqlite:neurod.db", env=None, name="neurod.yaml"):
        self.tmp = tmp
        self.data_dir = os.path.join(tmp, "data")
        self.config = os.path.join(tmp, name)
        with open(self.config, "w") as f:
            f.write(
                "cluster_name: e2e\n"
                f"data_dir: {self.data_dir}\n"
                "http:\n  listen: 127.0.0.1:0\n  drain_timeout: 5s\n"
                f"database:\n  url: \"{database_url}\"\n" + extra_yaml
            )
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.url = None
        self.log_path = os.path.join(tmp, "neurod.log")

    def start(self, timeout=30):
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([NEUROD, "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.output()
            m = re.search(r"listening on (https?://[0-9.:\[\]]+)", text)
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"neurod exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        raise AssertionError("neurod did not report where it listens:\n" + self.output())

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("neurod did not stop within %ss of SIGTERM" % timeout)
        return self.proc.returncode if self.proc else None

    def get(self, path, headers=None):
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def get_json(self, path):
        status, _, body = self.get(path)
        return status, json.loads(body)


def run(cmd, env=None, input=None, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})), input=input, timeout=timeout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(tests):
    """Runs the given test functions, each in a fresh temp dir; prints a summary line."""
    passed = failed = 0
    for t in tests:
        tmp = tempfile.mkdtemp(prefix="neurod-e2e-")
        try:
            t(tmp)
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
