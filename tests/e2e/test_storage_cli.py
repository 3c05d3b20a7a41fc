"""Storage end to end: the real neuro CLI against the real neurod (modules/storage/README.md,
docs/cli.md "Storage"). A tree copied up and back down byte for byte, the listing verbs,
stdin/stdout, filters, resuming after a killed client, a 1 GiB file, another user's view, and
SIGKILL of neurod in the middle of an upload. SQLite for most cases, PostgreSQL for a round
trip and the daemon kill.

By hand: `python3 test_storage_cli.py continue` runs the cases whose names contain a word given."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from harness import NEURO, Neurod, create_pg_database, main, run

AUTH_YAML = "modules:\n  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
MiB = 1 << 20
GiB = 1 << 30


class User:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.config = os.path.join(cluster.tmp, f"neuro-{name}.yaml")

    @property
    def env(self):
        return {"NEURO_CONFIG": self.config, "NEURO_TOKEN": "", "NEURO_URL": self.cluster.d.url, "NO_COLOR": "1"}

    def neuro(self, *args, input=None, expect=0, timeout=120):
        r = run([NEURO, *args], env=self.env, input=input, timeout=timeout)
        if expect is not None:
            assert r.returncode == expect, (f"neuro {' '.join(args)} as {self.name}: exit {r.returncode} (wanted {expect})"
                                            f"\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        return r

    def neuro_bytes(self, *args, input=None):
        r = subprocess.run([NEURO, *args], capture_output=True, input=input, env=dict(os.environ, **self.env), timeout=120)
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode(errors="replace"))
        return r.stdout

    def popen(self, *args):
        return subprocess.Popen([NEURO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, **self.env))

    def json(self, *args):
        return json.loads(self.neuro("-o", "json", *args).stdout)


_clusters = []


class Cluster:
    def __init__(self, tmp, database_url="sqlite:neurod.db", users=("alice", "bob")):
        self.tmp = tmp
        _clusters.append(self)
        self.d = Neurod(tmp, extra_yaml=AUTH_YAML, database_url=database_url).start()
        self.admin = User(self, "admin")
        token = open(os.path.join(self.d.data_dir, "auth", "admin.token")).read().strip()
        self.admin.neuro("login", self.d.url, "--token-stdin", input=token + "\n")
        self.users = {}
        for name in users:
            password = f"{name}-secret-1"
            self.admin.neuro("admin", "user", "add", name, "--password-stdin", input=password + "\n")
            u = User(self, name)
            u.neuro("login", self.d.url, "-u", name, "--password-stdin", input=password + "\n")
            self.users[name] = u

    @property
    def alice(self):
        return self.users["alice"]

    @property
    def bob(self):
        return self.users["bob"]

    def partials_size(self):
        """The largest file under the storage root's .neurod/ (upload temp files and partials)."""
        biggest = 0
        for root, _, files in os.walk(os.path.join(self.d.data_dir, "storage", ".neurod")):
            for f in files:
                try:
                    biggest = max(biggest, os.path.getsize(os.path.join(root, f)))
                except OSError:
                    pass
        return biggest

    def close(self):
        self.d.stop(sig=signal.SIGKILL)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def write(path, data=b""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(root):
    write(os.path.join(root, "empty.txt"))
    write(os.path.join(root, "big.bin"), os.urandom(3 * MiB + 17))
    write(os.path.join(root, "keep.bin"), b"keep me\n")
    write(os.path.join(root, "nested", "deep", "hello.txt"), b"hello from storage\n")
    write(os.path.join(root, "nested", "a.tmp"), b"scratch\n")
    write(os.path.join(root, "name with spaces & \u00fc.txt"), b"unicode\n")
    write(os.path.join(root, ".hidden"), b"secret-ish\n")
    os.makedirs(os.path.join(root, "nested", "empty-dir"))
    sparse_file(os.path.join(root, "sparse.img"), 16 * MiB, [(8 * MiB, b"x" * 100)])
    return root


def sparse_file(path, size, pieces):
    """A sparse file of size bytes with data only at the given (offset, bytes) pieces."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in pieces:
            f.seek(offset)
            f.write(data)


def snapshot(root):
    """{relative path: sha256 or 'dir'} of a local tree."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d))] = "dir"
        for f in files:
            out[os.path.normpath(os.path.join(rel, f))] = sha256(os.path.join(dirpath, f))
    return out


def uploads(trace):
    """The file uploads in a -v trace (PUT requests other than MKDIRS)."""
    return [line for line in trace.splitlines() if line.startswith("> PUT") and "op=MKDIRS" not in line]


def names(user, uri, *flags):
    return user.neuro("ls", *flags, uri).stdout.splitlines()


# --- cases ---------------------------------------------------------------------------------


def round_trip(c, tmp):
    a = c.alice
    src = make_tree(os.path.join(tmp, "src"))
    # Into an existing-or-not directory written with a trailing slash: storage:data/src.
    a.neuro("cp", "-r", src, "storage:data/")
    down = os.path.join(tmp, "down")
    os.makedirs(down)
    a.neuro("cp", "-r", "storage:data/src", down)  # an existing directory: into it
    assert snapshot(os.path.join(down, "src")) == snapshot(src)
    # The sparse file came back sparse (holes, not 16 MiB of zeros).
    st = os.stat(os.path.join(down, "src", "sparse.img"))
    assert st.st_size == 16 * MiB and st.st_blocks * 512 < 4 * MiB, st
    # With a new name: -r to a missing destination takes that name.
    a.neuro("cp", "-r", src, "storage:copy2")
    assert sorted(names(a, "storage:copy2", "-a")) == sorted(os.listdir(src))
    return src


def test_tree_round_trip_and_listing_sqlite(tmp):
    c = Cluster(tmp)
    a = c.alice
    src = round_trip(c, tmp)

    # ls: hidden names only with -a; -l: type, permission, size, time, name; -h sizes.
    listed = names(a, "storage:data/src")
    assert ".hidden" not in listed and "big.bin" in listed and "nested" in listed, listed
    assert ".hidden" in names(a, "storage:data/src", "-a")
    long = {line.split()[-1]: line for line in names(a, "storage:data/src", "-l")}
    assert long["nested"].startswith("d"), long
    assert long["big.bin"].startswith("-") and str(3 * MiB + 17) in long["big.bin"], long
    human = {line.split()[-1]: line for line in names(a, "storage:data/src", "-l", "-h")}
    assert " 3.1M " in human["big.bin"], human
    js = a.json("ls", "storage:data/src")
    by_name = {e["path"]: e for e in js}
    assert by_name["big.bin"]["length"] == 3 * MiB + 17 and by_name["nested"]["type"] == "DIRECTORY", js
    assert a.neuro("storage", "ls", "storage:data").stdout.split() == ["src"]
    # Top-level and `neuro storage` verbs are the same; absolute URIs name the project.
    assert names(a, "storage:/alice/data/src") == listed

    # cp to stdout and from stdin.
    out = a.neuro_bytes("cp", "storage:data/src/nested/deep/hello.txt", "-")
    assert out == b"hello from storage\n", out
    big = a.neuro_bytes("cp", "storage:data/src/big.bin", "-")
    assert hashlib.sha256(big).hexdigest() == sha256(os.path.join(src, "big.bin"))
    payload = os.urandom(MiB + 3)
    a.neuro_bytes("cp", "-", "storage:piped/in.bin", input=payload)
    assert a.neuro_bytes("cp", "storage:piped/in.bin", "-") == payload

    # mkdir: -p makes parents and accepts an existing directory; without it both fail.
    a.neuro("mkdir", "-p", "storage:x/y/z")
    a.neuro("mkdir", "-p", "storage:x/y/z")
    r = a.neuro("mkdir", "storage:q/r", expect=None)
    assert r.returncode != 0, r
    r = a.neuro("mkdir", "storage:x/y", expect=None)
    assert r.returncode != 0, r
    a.neuro("mkdir", "storage:x/w")
    assert sorted(names(a, "storage:x")) == ["w", "y"]

    # mv: into an existing directory, then a rename.
    a.neuro("mv", "storage:piped/in.bin", "storage:x/")
    a.neuro("mv", "storage:x/in.bin", "storage:x/renamed.bin")
    assert sorted(names(a, "storage:x")) == ["renamed.bin", "w", "y"]
    assert a.neuro_bytes("cp", "storage:x/renamed.bin", "-") == payload

    # rm: a directory needs -r.
    r = a.neuro("rm", "storage:x", expect=1)
    assert "is a directory" in r.stderr and "-r" in r.stderr, r.stderr
    a.neuro("rm", "storage:x/renamed.bin")
    a.neuro("rm", "-r", "storage:x")
    assert "x" not in names(a, "storage:")
    r = a.neuro("rm", "storage:x", expect=None)
    assert r.returncode != 0 and "not found" in r.stderr.lower(), r.stderr

    # tree, with sizes.
    t = a.neuro("storage", "tree", "-h", "storage:data/src").stdout
    assert "└── " in t and "hello.txt" in t and "[3.1M]" in t and "directories" in t, t
    assert ".hidden" not in t

    # df: the file system and the project's use.
    d = a.json("storage", "df")
    assert d["total"] > 0 and d["free"] >= 0, d
    assert d["project"]["used"] >= 3 * MiB, d
    table = a.neuro("storage", "df").stdout
    assert "project alice" in table, table

    # --exclude/--include: later flags win; a pattern with '/' only matches directories.
    a.neuro("cp", "-r", "--exclude", "*.bin", "--include", "keep.bin", "--exclude", "deep/", src, "storage:filtered")
    got = set(names(a, "storage:filtered", "-a"))
    assert "big.bin" not in got and "keep.bin" in got and "empty.txt" in got, got
    assert names(a, "storage:filtered/nested") == ["a.tmp", "empty-dir"], names(a, "storage:filtered/nested")

    # A partial failure: the good source is copied, the missing one reported, exit 1.
    r = a.neuro("cp", os.path.join(src, "keep.bin"), os.path.join(tmp, "missing"), "storage:multi/", expect=1)
    assert "missing" in r.stderr, r.stderr
    assert names(a, "storage:multi") == ["keep.bin"]
    # A directory without -r is refused.
    r = a.neuro("cp", src, "storage:nor", expect=1)
    assert "-r" in r.stderr, r.stderr

    # --continue skips what is there; -u copies only what changed.
    r = a.neuro("-v", "cp", "-r", "--continue", src, "storage:data/", timeout=120)
    assert uploads(r.stderr) == [], r.stderr
    r = a.neuro("-v", "cp", "-r", "-u", src, "storage:data/", timeout=120)
    assert uploads(r.stderr) == [], r.stderr
    time.sleep(1.1)
    write(os.path.join(src, "keep.bin"), b"keep me\n")  # newer, same size
    r = a.neuro("-v", "cp", "-r", "-u", src, "storage:data/", timeout=120)
    puts = uploads(r.stderr)
    assert len(puts) == 1 and "keep.bin" in puts[0], r.stderr


def test_other_user_sees_not_found_sqlite(tmp):
    c = Cluster(tmp)
    a, b = c.alice, c.bob
    f = os.path.join(tmp, "f.txt")
    write(f, b"alice's\n")
    a.neuro("cp", f, "storage:private/f.txt")
    for args in (("ls", "storage:/alice/private"), ("cp", "storage:/alice/private/f.txt", "-"),
                 ("cp", f, "storage:/alice/private/g.txt"), ("rm", "storage:/alice/private/f.txt"),
                 ("storage", "tree", "storage:/alice")):
        r = b.neuro(*args, expect=None)
        assert r.returncode != 0 and "not found" in r.stderr.lower(), (args, r.returncode, r.stderr)
    assert names(a, "storage:private") == ["f.txt"]
    # A cluster that is not this one is refused before any request.
    r = a.neuro("ls", "storage://elsewhere/alice", expect=2)
    assert "cluster" in r.stderr, r.stderr


def big_sparse(tmp):
    """A 1 GiB sparse file with random data at its start, middle and end."""
    path = os.path.join(tmp, "big.img")
    sparse_file(path, GiB, [(0, os.urandom(MiB)), (GiB // 2, os.urandom(MiB)), (GiB - MiB, os.urandom(MiB))])
    return path


def kill_during_upload(c, user, path, dst, kill, min_bytes=64 * MiB, timeout=120):
    """Starts neuro cp PATH DST, calls kill() once the server holds min_bytes of it, and
    returns the neuro process (waited for)."""
    p = user.popen("cp", "-q", path, dst)
    deadline = time.time() + timeout
    while c.partials_size() < min_bytes:
        assert p.poll() is None, f"the upload ended (exit {p.returncode}) before it could be interrupted: " \
                                 f"{p.stderr.read().decode(errors='replace')}"
        assert time.time() < deadline, "the upload did not start"
        time.sleep(0.005)
    kill(p)
    p.wait(timeout=60)
    return p


def test_continue_after_killed_client_1gib_sqlite(tmp):
    c = Cluster(tmp, users=("alice",))
    a = c.alice
    big = big_sparse(tmp)
    p = kill_during_upload(c, a, big, "storage:big.img", lambda p: p.kill())
    assert p.returncode == -signal.SIGKILL
    # Nothing at the destination: the part that arrived is a partial, not a file.
    r = a.neuro("ls", "storage:big.img", expect=None)
    assert r.returncode != 0 and "not found" in r.stderr.lower(), r
    r = a.neuro("-v", "cp", "--continue", big, "storage:big.img", timeout=600)
    assert "UPLOADSTATUS" in r.stderr, r.stderr
    back = os.path.join(tmp, "back.img")
    a.neuro("cp", "storage:big.img", back, timeout=600)
    assert os.path.getsize(back) == GiB
    assert sha256(back) == sha256(big)
    # Same size: --continue has nothing left to do.
    r = a.neuro("-v", "cp", "--continue", big, "storage:big.img")
    assert uploads(r.stderr) == [], r.stderr
    # A download resumes from the local file's end.
    with open(back, "r+b") as f:
        f.truncate(GiB // 2 + 12345)
    r = a.neuro("-v", "cp", "--continue", "storage:big.img", back, timeout=600)
    assert sha256(back) == sha256(big)


def test_neurod_killed_during_upload_postgresql(tmp):
    url, drop = create_pg_database()
    c = None
    try:
        c = Cluster(tmp, database_url=url, users=("alice",))
        a = c.alice
        round_trip(c, tmp)
        big = big_sparse(tmp)

        def kill_neurod(_):
            c.d.proc.kill()
            c.d.proc.wait()

        p = kill_during_upload(c, a, big, "storage:up/big.img", kill_neurod)
        assert p.returncode != 0, p.returncode
        err = p.stderr.read().decode(errors="replace")
        assert "big.img" in err, err
        c.d.start()
        r = a.neuro("ls", "storage:up", expect=None)
        assert "big.img" not in r.stdout, r.stdout
        a.neuro("cp", "--continue", big, "storage:up/big.img", timeout=600)
        assert a.neuro("ls", "storage:up").stdout.split() == ["big.img"]
        back = os.path.join(tmp, "back.img")
        a.neuro("cp", "storage:up/big.img", back, timeout=600)
        assert sha256(back) == sha256(big)
    finally:
        if c:
            c.close()
        drop()


def closing(test):
    """Runs a case, prints its neurod's log tail when it fails, and stops every neurod it started."""
    def case(tmp):
        try:
            test(tmp)
        except BaseException:
            for c in _clusters:
                if getattr(c, "d", None) and c.d.url:
                    print(f"---- neurod log ({c.tmp}), last lines ----\n" + "\n".join(c.d.output().splitlines()[-40:]))
            raise
        finally:
            for c in _clusters:
                try:
                    if getattr(c, "d", None):
                        c.close()
                except Exception:
                    pass
            _clusters.clear()

    case.__name__ = test.__name__
    return case


if __name__ == "__main__":
    cases = [
        test_tree_round_trip_and_listing_sqlite,
        test_other_user_sees_not_found_sqlite,
        test_continue_after_killed_client_1gib_sqlite,
        test_neurod_killed_during_upload_postgresql,
    ]
    wanted = sys.argv[1:]
    main([closing(t) for t in cases if not wanted or any(w in t.__name__ for w in wanted)])
