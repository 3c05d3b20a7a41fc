"""Identity and access end to end: the real neurod and the real neuro CLI, on SQLite and
PostgreSQL. Each user has their own CLI config file (NEURO_CONFIG)."""
import json
import os
import subprocess
import time

from harness import NEURO, NEUROD, Neurod, create_pg_database, main, run

# Cheap password hashing and a quick cross-process sync keep the suite fast.
AUTH_YAML = (
    "modules:\n  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
    "    sync_interval: 200ms\n    login_max_failures_per_user: 3\n"
)


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


def flows(tmp, database_url):
    d = Neurod(tmp, extra_yaml=AUTH_YAML, database_url=database_url).start()
    try:
        token_file = os.path.join(d.data_dir, "auth", "admin.token")
        assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
        admin_token = open(token_file).read().strip()
        assert admin_token not in d.output(), "the bootstrap token reached the log"

        admin, alice, bob = User(tmp, "admin"), User(tmp, "alice"), User(tmp, "bob")
        admin.neuro("login", d.url, "--token-stdin", input=admin_token + "\n")
        me = admin.json("whoami")
        assert me["name"] == "admin" and me["admin"] is True, me

        admin.neuro("admin", "user", "add", "alice", "--password-stdin", input="alice-secret-1\n")
        admin.neuro("admin", "user", "add", "bob", "--password-stdin", input="bob-secret-12\n")
        users = [u["name"] for u in admin.json("admin", "user", "ls")]
        assert {"admin", "alice", "bob"} <= set(users), users

        alice.neuro("login", d.url, "-u", "alice", "--password-stdin", input="alice-secret-1\n")
        bob.neuro("login", d.url, "-u", "bob", "--password-stdin", input="bob-secret-12\n")
        assert alice.json("whoami")["name"] == "alice"
        cfg = open(alice.env["NEURO_CONFIG"]).read()
        assert oct(os.stat(alice.env["NEURO_CONFIG"]).st_mode & 0o777) == "0o600"
        assert "alice-secret-1" not in cfg

        # Sharing: a relative URI resolves under alice's project.
        alice.neuro("acl", "grant", "storage:data/x", "bob", "read")
        bob_grants = bob.json("acl", "ls")
        assert {"uri": "storage://e2e/alice/data/x", "action": "read"} in [
            {"uri": g["uri"], "action": g["action"]} for g in bob_grants
        ], bob_grants
        # A relative prefix resolves for the caller: storage: is the root, storage:x alice's.
        mine = alice.json("acl", "ls", "storage:", "--expand-roles")
        assert "storage://e2e/alice" in [g["uri"] for g in mine], mine
        assert alice.json("acl", "ls", "storage:data") == []
        shared = alice.json("acl", "ls", "--shared")
        assert any(s["user"] == "bob" and s["uri"] == "storage://e2e/alice/data/x" for s in shared), shared
        tree = bob.neuro("acl", "tree", "storage:").stdout
        assert "alice" in tree and "read" in tree, tree
        # Bob cannot grant what he does not manage, nor escalate himself.
        r = bob.neuro("acl", "grant", "storage://e2e/alice", "bob", "manage", expect=4)
        assert "manage" in r.stderr, r.stderr
        # Revocation takes effect on the next request.
        alice.neuro("acl", "revoke", "storage:data/x", "bob")
        assert not [g for g in bob.json("acl", "ls") if g["uri"].startswith("storage://e2e/alice")]
        r = bob.neuro("acl", "grant", "storage:x", "bob", "own", expect=None)  # not an action
        assert r.returncode in (2, 5), r
        r = bob.neuro("acl", "grant", "storage://e2e/../x", "bob", "read", expect=None)
        assert r.returncode != 0 and "invalid" in (r.stderr + r.stdout).lower(), r

        # Roles: alice's role, shared with bob.
        alice.neuro("role", "create", "alice/roles/team")
        alice.neuro("acl", "grant", "storage:shared", "role://alice/roles/team", "write")
        alice.neuro("role", "grant", "alice/roles/team", "bob")
        bob_all = bob.json("acl", "ls", "--expand-roles")
        assert any(g["uri"] == "storage://e2e/alice/shared" for g in bob_all), bob_all
        bob.neuro("role", "create", "alice/roles/stolen", expect=4)

        # Projects: bob joins as writer; a writer cannot invite; nobody adds themselves.
        alice.neuro("project", "create", "ml")
        alice.neuro("project", "add-member", "ml", "bob", "--role", "writer")
        projects = {p["name"]: p["role"] for p in bob.json("project", "ls")}
        assert projects.get("ml") == "writer", projects
        members = {m["user"]: m["role"] for m in alice.json("project", "members", "ml")}
        assert members == {"alice": "admin", "bob": "writer"}, members
        bob.neuro("project", "add-member", "ml", "bob", "--role", "admin", expect=4)
        # Not a member of alice's personal project: it is not even there for him (404).
        bob.neuro("project", "add-member", "alice", "bob", "--role", "reader", expect=5)
        bob.neuro("project", "rm", "ml", "--yes", expect=4)
        alice.neuro("project", "rm-member", "ml", "bob")
        assert "ml" not in {p["name"] for p in bob.json("project", "ls")}

        # API tokens: usable at once, refused once revoked.
        created = alice.json("token", "create", "--name", "ci", "--expires-in", "1d")
        ci = User(tmp, "alice-ci")
        ci.neuro("login", d.url, "--token-stdin", input=created["token"] + "\n")
        assert ci.json("whoami")["name"] == "alice"
        assert created["token"] not in alice.neuro("-o", "json", "token", "ls").stdout
        alice.neuro("token", "revoke", created["id"])
        ci.neuro("whoami", expect=4)

        # Service accounts have their own tokens.
        sa = alice.json("service-account", "create", "builder")
        robot = User(tmp, "robot")
        robot.neuro("login", d.url, "--token-stdin", input=sa["token"] + "\n")
        who = robot.json("whoami")
        assert who["name"] == "alice/service-accounts/builder" and who["kind"] == "service", who
        alice.neuro("service-account", "rm", "builder")
        robot.neuro("whoami", expect=4)

        # Quotas: set by the admin, read by the user; others cannot set them.
        admin.neuro("admin", "quota", "set", "--user", "alice", "--max-running-jobs", "3", "--storage", "10GiB")
        q = alice.json("quota")
        assert q["user"]["limits"]["max_running_jobs"] == 3, q
        assert q["user"]["limits"]["storage_bytes"] == 10 * 2**30, q
        bob.neuro("admin", "quota", "set", "--user", "bob", "--max-running-jobs", "100", expect=4)

        # Audit: the admin sees alice's changes; bob may not read them.
        entries = admin.json("admin", "audit", "--user", "alice", "--limit", "200")
        entries = entries["entries"] if isinstance(entries, dict) else entries
        paths = [(e["method"], e["path"], e["status"]) for e in entries]
        assert ("POST", "/api/v1/projects", 201) in paths, paths
        assert all(e["principal"] == "alice" for e in entries)
        bob.neuro("admin", "audit", "--user", "alice", expect=4)
        own = bob.json("admin", "audit")
        own = own["entries"] if isinstance(own, dict) else own
        assert own and all(e["principal"] == "bob" for e in own), own

        # Brute force: after 3 failures (the configured limit) even the right password waits.
        mallory = User(tmp, "mallory")
        for _ in range(3):
            mallory.neuro("login", d.url, "-u", "bob", "--password-stdin", input="wrong-password\n", expect=4)
        r = mallory.neuro("login", d.url, "-u", "bob", "--password-stdin", input="bob-secret-12\n", expect=None)
        assert r.returncode != 0 and "too many" in (r.stderr + r.stdout).lower(), r

        # Offline recovery against the running daemon's database.
        r = subprocess.run([NEUROD, "--config", d.config, "admin", "user", "set-password", "alice", "--password-stdin"],
                           input="alice-secret-2\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        time.sleep(0.6)  # sync_interval
        alice2 = User(tmp, "alice2")
        alice2.neuro("login", d.url, "-u", "alice", "--password-stdin", input="alice-secret-2\n")

        # Logout ends the session.
        alice2.neuro("logout")
        r = alice2.neuro("whoami", expect=None)
        assert r.returncode != 0

        assert "alice-secret" not in d.output() and "bob-secret" not in d.output()
        assert admin_token not in d.output()
    finally:
        assert d.stop() == 0


def test_auth_flows_on_sqlite(tmp):
    flows(tmp, "sqlite:neurod.db")


def test_auth_flows_on_postgresql(tmp):
    url, drop = create_pg_database()
    try:
        flows(tmp, url)
    finally:
        drop()


def test_admin_offline_commands(tmp):
    d = Neurod(tmp, extra_yaml=AUTH_YAML)
    # Before the daemon ever ran: the database is created and migrated on the spot.
    r = subprocess.run([NEUROD, "--config", d.config, "admin", "user", "add", "root2", "--admin"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([NEUROD, "--config", d.config, "admin", "token", "create", "root2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("nd_"), r.stdout
    d.start()
    try:
        # The database had a user, so no bootstrap admin was made.
        assert not os.path.exists(os.path.join(d.data_dir, "auth", "admin.token"))
        u = User(tmp, "root2")
        u.neuro("login", d.url, "--token-stdin", input=token + "\n")
        assert u.json("whoami")["admin"] is True
        r = subprocess.run([NEUROD, "--config", d.config, "admin", "user", "rm", "root2"], capture_output=True, text=True)
        assert r.returncode != 0 and "last administrator" in r.stderr, r.stderr
        r = subprocess.run([NEUROD, "admin", "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "user" in r.stdout
        r = subprocess.run([NEUROD, "--config", d.config, "admin", "nonsense"], capture_output=True, text=True)
        assert r.returncode == 2
    finally:
        assert d.stop() == 0


if __name__ == "__main__":
    main([test_auth_flows_on_sqlite, test_auth_flows_on_postgresql, test_admin_offline_commands])
