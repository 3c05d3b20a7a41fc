"""Secrets end to end: the real neurod and the real neuro CLI on SQLite and PostgreSQL —
`neuro secret add|ls|get|rm`, permissions between two users, the master key file, the
plaintext nowhere under the data dir or in the log, and `neurod secrets rotate-key` between
two runs of the daemon."""
import json
import os
import subprocess

from harness import NEURO, NEUROD, Neurod, create_pg_database, main, run

AUTH_YAML = "modules:\n  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
CANARY = "e2e-canary-plaintext-5b1d0c"
BINARY = bytes(range(256)) * 4 + b"\x00end"


class User:
    def __init__(self, tmp, name):
        self.name = name
        self.env = {"NEURO_CONFIG": os.path.join(tmp, f"neuro-{name}.yaml"), "NEURO_TOKEN": "", "NEURO_URL": ""}

    def neuro(self, *args, input=None, expect=0):
        r = run([NEURO, *args], env=self.env, input=input)
        if expect is not None:
            assert r.returncode == expect, f"neuro {' '.join(args)} as {self.name}: exit {r.returncode} (wanted {expect})\n{r.stdout}\n{r.stderr}"
        return r

    def raw(self, *args):
        """stdout as bytes (secret get prints the value as it is)."""
        r = subprocess.run([NEURO, *args], capture_output=True, env=dict(os.environ, **self.env), timeout=60)
        assert r.returncode == 0, f"neuro {' '.join(args)}: exit {r.returncode}\n{r.stderr.decode()}"
        return r.stdout

    def json(self, *args):
        return json.loads(self.neuro("-o", "json", *args).stdout)


def files_containing(root, needle):
    hits = []
    for folder, _, names in os.walk(root):
        for n in names:
            p = os.path.join(folder, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def flows(tmp, database_url):
    d = Neurod(tmp, extra_yaml=AUTH_YAML, database_url=database_url).start()
    try:
        key_file = os.path.join(d.data_dir, "secrets", "master.key")
        assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
        assert os.path.getsize(key_file) == 32

        admin, alice, bob = User(tmp, "admin"), User(tmp, "alice"), User(tmp, "bob")
        admin.neuro("login", d.url, "--token-stdin", input=open(os.path.join(d.data_dir, "auth", "admin.token")).read())
        admin.neuro("admin", "user", "add", "alice", "--password-stdin", input="alice-secret-1\n")
        admin.neuro("admin", "user", "add", "bob", "--password-stdin", input="bob-secret-12\n")
        alice.neuro("login", d.url, "-u", "alice", "--password-stdin", input="alice-secret-1\n")
        bob.neuro("login", d.url, "-u", "bob", "--password-stdin", input="bob-secret-12\n")

        # add: a literal, a file (any bytes), stdin.
        out = alice.neuro("secret", "add", "API_KEY", CANARY).stdout
        assert "API_KEY" in out and "alice" in out, out
        blob = os.path.join(tmp, "blob.bin")
        with open(blob, "wb") as f:
            f.write(BINARY)
        alice.neuro("secret", "add", "blob.bin", "@" + blob)
        alice.neuro("secret", "add", "FROM_STDIN", "@-", input="piped value")
        added = alice.json("secret", "add", "REPLACED", "one")
        assert added["key"] == "REPLACED" and added["project_name"] == "alice" and "value" not in added, added
        alice.neuro("secret", "add", "REPLACED", "two")

        # get prints the value exactly, without a newline.
        assert alice.raw("secret", "get", "API_KEY") == CANARY.encode()
        assert alice.raw("secret", "get", "blob.bin") == BINARY
        assert alice.raw("secret", "get", "FROM_STDIN", "-p", "alice") == b"piped value"
        assert alice.raw("secret", "get", "REPLACED") == b"two"
        as_json = alice.json("secret", "get", "REPLACED")
        assert as_json["value"] == "dHdv", as_json  # base64("two")

        # ls: names and metadata, never values.
        table = alice.neuro("secret", "ls").stdout
        assert table.splitlines()[0].split() == ["KEY", "PROJECT", "OWNER", "UPDATED"], table
        assert "API_KEY" in table and CANARY not in table, table
        listed = alice.json("secret", "ls", "-p", "alice")
        assert sorted(s["key"] for s in listed) == ["API_KEY", "FROM_STDIN", "REPLACED", "blob.bin"], listed
        assert all("value" not in s for s in listed), listed

        # bob: alice's secrets do not exist for him until she shares one; then read, not delete.
        r = bob.neuro("secret", "get", "API_KEY", "-p", "alice", expect=5)
        assert "404" in r.stderr and CANARY not in r.stderr, r.stderr
        assert bob.json("secret", "ls") == []
        bob.neuro("secret", "add", "API_KEY", "x", "-p", "alice", expect=4)
        alice.neuro("acl", "grant", "secret:API_KEY", "bob", "read")
        assert bob.raw("secret", "get", "API_KEY", "-p", "alice") == CANARY.encode()
        r = bob.neuro("secret", "rm", "API_KEY", "-p", "alice", expect=4)
        assert "403" in r.stderr, r.stderr

        # Errors: a bad key is a usage-like 400 (exit 5), a missing file a local usage error.
        r = alice.neuro("secret", "add", "9bad", "v", expect=5)
        assert "invalid secret key" in r.stderr, r.stderr
        alice.neuro("secret", "add", "K", "@" + os.path.join(tmp, "missing"), expect=2)
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(b"x" * (1024 * 1024 + 1))
        r = alice.neuro("secret", "add", "BIG", "@" + big, expect=5)
        assert "413" in r.stderr, r.stderr

        # rm
        alice.neuro("secret", "rm", "FROM_STDIN")
        alice.neuro("secret", "get", "FROM_STDIN", expect=5)
        assert alice.json("secret", "rm", "REPLACED")["removed"] is True

        assert d.stop() == 0
        # Nothing under the data dir or in the log holds the plaintext.
        assert files_containing(d.data_dir, CANARY.encode()) == []
        assert files_containing(d.data_dir, BINARY[:300]) == []
        assert CANARY not in d.output()

        # Rotation between two runs: a new key, the old one kept, every value still reads.
        old_key = open(key_file, "rb").read()
        r = subprocess.run([NEUROD, "--config", d.config, "secrets", "rotate-key"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "re-encrypted 2 secrets" in r.stdout, r.stdout
        assert open(key_file, "rb").read() != old_key
        assert open(key_file + ".old", "rb").read() == old_key
        assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
        assert oct(os.stat(key_file + ".old").st_mode & 0o777) == "0o600"
        assert not os.path.exists(key_file + ".new")

        d.start()  # on a new port
        assert alice.raw("--url", d.url, "secret", "get", "API_KEY") == CANARY.encode()
        assert alice.raw("--url", d.url, "secret", "get", "blob.bin") == BINARY
    finally:
        d.stop()


def test_secrets_cli_on_sqlite(tmp):
    flows(tmp, "sqlite:neurod.db")


def test_secrets_cli_on_postgresql(tmp):
    url, drop = create_pg_database()
    try:
        flows(tmp, url)
    finally:
        drop()


def test_bad_master_key_stops_neurod(tmp):
    d = Neurod(tmp, extra_yaml=AUTH_YAML).start()
    key_file = os.path.join(d.data_dir, "secrets", "master.key")
    d.stop()
    os.chmod(key_file, 0o644)
    r = subprocess.run([NEUROD, "--config", d.config], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r
    assert "cannot start module 'secrets'" in r.stderr + r.stdout and "chmod 600" in r.stderr + r.stdout, r.stderr
    r = subprocess.run([NEUROD, "--config", d.config, "secrets", "rotate-key"], capture_output=True, text=True)
    assert r.returncode != 0 and "chmod 600" in r.stderr, r.stderr


if __name__ == "__main__":
    main([test_secrets_cli_on_sqlite, test_secrets_cli_on_postgresql, test_bad_master_key_stops_neurod])
