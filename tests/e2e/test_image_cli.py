"""Images end to end: the real neuro CLI and a real podman against the real neurod's registry
(docs/cli.md "Images"). An image built offline from busybox-static is pushed, listed, tagged,
sized, digested, pulled back (same image id), deleted, with tags over two pages; a
multi-platform index sized per platform; another user cannot see it; `neuro
config docker` sets up the docker-credential-neuro helper and a plain `podman pull` works with
it (and fails without it); `--no-helper` stores the token instead. A fake podman and docker on
PATH show that the token never appears on a command line.

Each case with a registry skips, saying so, while neurod answers 404 on /v2/ (the registry
module not built in). By hand: `python3 test_image_cli.py helper` runs the cases whose names
contain a word given."""
import base64
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import urllib.error
import urllib.request

from harness import NEURO, Neurod

AUTH_YAML = "modules:\n  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
BUSYBOX = os.environ.get("NEUROD_TEST_BUSYBOX", "/bin/busybox")
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
# What the environment may set that changes where podman, docker and neuro look.
SCRUB = ["NEURO_TOKEN", "NEURO_URL", "NEURO_CONFIG", "NEURO_IMAGE_ENGINE", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG",
         "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"]


class Skip(Exception):
    pass


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(extra)
    return env


class Podman:
    """The podman CLI on its own storage under tmp (vfs; nothing is run, so no runtime settings matter)."""

    def __init__(self, tmp):
        if shutil.which("podman") is None:
            raise AssertionError("podman is not installed (apt-get install podman)")
        d = os.path.join(tmp, "podman")
        for sub in ("storage", "run", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "containers.conf"), "w") as f:
            f.write(f'[engine]\nevents_logger = "file"\nevents_logfile_path = "{d}/events.log"\n'
                    f'tmp_dir = "{d}/tmp"\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n')
        with open(os.path.join(d, "storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/storage"\nrunroot = "{d}/run"\n')
        self.env = {"CONTAINERS_CONF": os.path.join(d, "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": os.path.join(d, "storage.conf")}
        self.tmp = tmp

    def __call__(self, *args, env=None, expect=0, timeout=180):
        r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                           env=clean_env(dict(self.env, **(env or {}))))
        if expect is not None:
            assert r.returncode == expect, f"podman {' '.join(args)}: exit {r.returncode} (wanted {expect})\n{r.stderr[-3000:]}"
        return r

    def build(self, name, marker):
        """An image made offline: busybox-static plus a marker file, imported from a tar."""
        path = os.path.join(self.tmp, f"rootfs-{marker}.tar")
        with tarfile.open(path, "w") as tar:
            tar.add(BUSYBOX, arcname="bin/busybox")
            data = f"{marker}\n".encode()
            info = tarfile.TarInfo("etc/marker")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        self("import", "--change", 'CMD ["/bin/busybox", "sh"]', path, name)

    def image_id(self, name):
        return self("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()

    def exists(self, name):
        return self("image", "exists", name, expect=None).returncode == 0


class User:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.config = os.path.join(cluster.tmp, f"neuro-{name}.yaml")
        self.home = os.path.join(cluster.tmp, f"home-{name}")
        os.makedirs(self.home, exist_ok=True)

    @property
    def env(self):
        return {"NEURO_CONFIG": self.config, "NEURO_URL": self.cluster.d.url, "NO_COLOR": "1", "HOME": self.home}

    def token(self):
        with open(self.config) as f:
            for line in f:
                if line.startswith("token:"):
                    return line.split(":", 1)[1].strip().strip('"')
        raise AssertionError(f"no token in {self.config}")

    def neuro(self, *args, input=None, expect=0, timeout=300, env=None, argv0=None):
        e = clean_env(dict(self.env, **(env or {})))
        r = subprocess.run([argv0 or NEURO, *args], capture_output=True, text=True, env=e, input=input, timeout=timeout)
        if expect is not None:
            assert r.returncode == expect, (f"neuro {' '.join(args)} as {self.name}: exit {r.returncode} (wanted {expect})"
                                            f"\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        return r

    def json(self, *args, **kw):
        return json.loads(self.neuro("-o", "json", *args, **kw).stdout)


class Cluster:
    def __init__(self, tmp, users=("alice", "bob")):
        self.tmp = tmp
        self.d = Neurod(tmp, extra_yaml=AUTH_YAML).start()
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
        self.host = self.d.url.split("://", 1)[1].rstrip("/")

    @property
    def alice(self):
        return self.users["alice"]

    @property
    def bob(self):
        return self.users["bob"]

    def need_registry(self):
        status, _, _ = self.d.get("/v2/")
        if status == 404:
            raise Skip("neurod answers 404 on /v2/: the registry module is not built in")

    def registry_get(self, user, path, accept=None):
        auth = base64.b64encode(f"{user.name}:{user.token()}".encode()).decode()
        headers = {"Authorization": "Basic " + auth}
        if accept:
            headers["Accept"] = accept
        req = urllib.request.Request(self.d.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()

    def registry_put(self, user, path, body, content_type):
        auth = base64.b64encode(f"{user.name}:{user.token()}".encode()).decode()
        req = urllib.request.Request(self.d.url + path, data=body, method="PUT",
                                     headers={"Authorization": "Basic " + auth, "Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status

    def close(self):
        self.d.stop(sig=signal.SIGKILL)


# --- cases ---------------------------------------------------------------------------------


def test_push_ls_tags_size_digest_pull_rm(tmp):
    c = Cluster(tmp)
    c.need_registry()
    a, b = c.alice, c.bob
    pm = Podman(tmp)
    pm.build("localhost/train:1", "one")
    pm.build("localhost/train:2", "two")
    id1 = pm.image_id("localhost/train:1")
    engine = {"PATH": os.environ["PATH"], **pm.env}

    r = a.neuro("image", "push", "train:1", env=engine)
    assert "Pushed train:1 to image:train:1" in r.stdout, r.stdout
    assert "sha256:" in r.stdout, r.stdout
    pushed = a.json("image", "push", "-q", "localhost/train:2", env=engine)
    assert pushed["uri"] == "image:/alice/train:2" and pushed["remote"] == f"{c.host}/alice/train:2", pushed
    assert pushed["digest"].startswith("sha256:"), pushed
    # An explicit remote name, in the long form, with the top-level shortcut.
    a.neuro("push", "train:1", "image:/alice/other:v1", env=engine)

    assert a.neuro("image", "ls").stdout.split() == ["image:other", "image:train"]
    listed = a.json("image", "ls", "-l")
    assert {i["repository"]: i["tags"] for i in listed} == {"alice/other": ["v1"], "alice/train": ["1", "2"]}, listed
    assert "image:train  1, 2" in a.neuro("image", "ls", "-l").stdout
    assert a.neuro("images", "-n", "^tr").stdout.split() == ["image:train"]
    assert a.neuro("image", "ls", "-p", "bob").stdout == ""
    assert a.neuro("image", "tags", "image:train").stdout.split() == ["1", "2"]
    assert a.neuro("image", "tags", "image://e2e/alice/train").stdout.split() == ["1", "2"]

    # The digest and the size, checked against the manifest itself.
    digest = a.neuro("image", "digest", "image:train:1").stdout.strip()
    _, headers, body = c.registry_get(a, "/v2/alice/train/manifests/1", accept=ACCEPT)
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest(), (digest, headers)
    manifest = json.loads(body)
    want = manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    size = a.json("image", "size", "image:train:1")
    assert size["size"] == want and size["digest"] == digest, (size, want)
    assert want > 100_000, want  # busybox is in there
    assert a.neuro("image", "size", "image:train:1").stdout.strip().endswith("iB"), "a human size"
    assert a.json("image", "digest", "image:train:2")["digest"] != digest

    # Pulled back, the local image is the one pushed.
    pm("rmi", "localhost/train:1")
    assert not pm.exists("localhost/train:1")
    r = a.neuro("image", "pull", "image:train:1", env=engine)
    assert "Pulled image:train:1 to train:1" in r.stdout, r.stdout
    assert pm.image_id("localhost/train:1") == id1
    a.neuro("pull", "-q", "image:/alice/other:v1", "copy:7", env=engine)
    assert pm.image_id("localhost/copy:7") == id1

    # bob sees none of it.
    assert b.neuro("image", "ls").stdout == ""
    r = b.neuro("image", "tags", "image:/alice/train", expect=None)
    assert r.returncode in (4, 5), (r.returncode, r.stderr)
    r = b.neuro("image", "pull", "image:/alice/train:1", "stolen:1", env=engine, expect=None)
    assert r.returncode == 1 and "podman pull failed" in r.stderr, (r.returncode, r.stderr)
    r = b.neuro("image", "rm", "image:/alice/train:1", expect=None)
    assert r.returncode in (4, 5), (r.returncode, r.stderr)

    # rm deletes the manifest the tag names; the other tag stays.
    r = a.neuro("image", "rm", "image:train:1")
    assert f"Deleted image:train:1 ({digest})." in r.stdout, r.stdout
    assert a.neuro("image", "tags", "image:train").stdout.split() == ["2"]
    r = a.neuro("image", "digest", "image:train:1", expect=5)
    assert "not found" in r.stderr or "MANIFEST_UNKNOWN" in r.stderr, r.stderr

    # More tags than one page holds (the registry's pages stop at 1000): neuro follows Link.
    _, headers, body = c.registry_get(a, "/v2/alice/train/manifests/2", accept=ACCEPT)
    for i in range(1001):
        c.registry_put(a, f"/v2/alice/train/manifests/p{i:04d}", body, headers["Content-Type"])
    r = a.neuro("-v", "image", "tags", "image:train")
    tags = r.stdout.split()
    assert len(tags) == 1002 and tags[0] == "2" and tags[-1] == "p1000", (len(tags), tags[:3], tags[-3:])
    assert r.stderr.count("/tags/list") == 2 and "last=" in r.stderr, r.stderr
    assert len(a.json("image", "tags", "image:train")["tags"]) == 1002

    r = a.neuro("image", "rm", "image:train:1", "image:train:2", expect=5)
    assert "cannot delete image:train:1" in r.stderr and "Deleted image:train:2" in r.stdout, (r.stdout, r.stderr)
    # Every tag of train:2's manifest went with it.
    assert a.neuro("image", "tags", "image:train", expect=None).stdout.split() == []


def test_errors(tmp):
    c = Cluster(tmp, users=("alice",))
    a = c.alice
    # Usage errors need no server.
    for bad in ["image:Bad", "train", "image:/x", "image:x:-1"]:
        r = a.neuro("image", "tags", bad, expect=2)
        assert "image" in r.stderr, r.stderr
    r = a.neuro("image", "rm", "image:train", expect=2)
    assert "give a tag or a digest" in r.stderr, r.stderr
    a.neuro("image", "tags", "image://elsewhere/alice/x", expect=2)
    # Nothing to push with.
    empty = os.path.join(tmp, "empty-bin")
    os.makedirs(empty)
    r = a.neuro("image", "push", "train:1", env={"PATH": empty}, expect=2)
    assert "neither podman nor docker is installed" in r.stderr, r.stderr
    r = a.neuro("image", "push", "--engine", "buildah", "train:1", expect=2)
    assert "unknown engine" in r.stderr, r.stderr
    c.need_registry()
    r = a.neuro("image", "tags", "image:nothing-here", expect=5)
    assert "HTTP 404" in r.stderr, r.stderr
    # No token: the registry refuses, exit 4 with the hint.
    r = a.neuro("image", "ls", env={"NEURO_TOKEN": "not-a-token"}, expect=4)
    assert "neuro login" in r.stderr, r.stderr


def fake_engine(tmp, name):
    """A fake podman or docker that records its arguments and the auth file it was given."""
    d = os.path.join(tmp, f"fake-{name}")
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "calls")
    with open(os.path.join(d, name), "w") as f:
        f.write(f"""#!/bin/sh
echo "ARGS $*" >> {log}
prev=
for a in "$@"; do
  f=
  case $prev in
    --authfile) f=$a ;;
    --config) f=$a/config.json ;;
  esac
  if [ -n "$f" ]; then
    echo "AUTH $(cat "$f")" >> {log}
    echo "MODE $(stat -c %a "$f") $(stat -c %a "$(dirname "$f")")" >> {log}
    echo "DIR $(dirname "$f")" >> {log}
  fi
  prev=$a
done
exit 0
""")

    os.chmod(os.path.join(d, name), 0o755)
    return d, log


def test_engines_get_credentials_in_a_private_file(tmp):
    c = Cluster(tmp, users=("alice",))
    a = c.alice
    token = a.token()
    want_auth = base64.b64encode(f"alice:{token}".encode()).decode()
    for name in ("podman", "docker"):
        d, log = fake_engine(tmp, name)
        # Only the fake on PATH (plus what sh needs): the fake podman is picked without --engine.
        r = a.neuro("image", "push", "train:3", env={"PATH": d + ":/usr/bin:/bin", "NEURO_IMAGE_ENGINE": name})
        assert "Pushed train:3 to image:train:3" in r.stdout, r.stdout
        calls = open(log).read()
        assert token not in "".join(l for l in calls.splitlines() if l.startswith("ARGS")), calls
        assert json.loads(calls.split("AUTH ", 1)[1].splitlines()[0]) == {"auths": {c.host: {"auth": want_auth}}}, calls
        assert "MODE 600 700" in calls, calls
        if name == "podman":
            assert f"ARGS push --authfile " in calls and f"--tls-verify=false train:3 docker://{c.host}/alice/train:3" in calls, calls
        else:
            assert f"ARGS tag train:3 {c.host}/alice/train:3" in calls and f"push {c.host}/alice/train:3" in calls, calls
        # The private directory is gone once neuro is done.
        dirs = [l[4:] for l in calls.splitlines() if l.startswith("DIR ")]
        assert dirs and not any(os.path.exists(x) for x in dirs), dirs
        r = a.neuro("image", "pull", "image:train:3", "here:3", env={"PATH": d + ":/usr/bin:/bin", "NEURO_IMAGE_ENGINE": name})
        assert "Pulled image:train:3 to here:3" in r.stdout
        assert f"tag {c.host}/alice/train:3 here:3" in open(log).read()
    # A failing engine: exit 1, named.
    d = os.path.join(tmp, "failing")
    os.makedirs(d)
    with open(os.path.join(d, "podman"), "w") as f:
        f.write("#!/bin/sh\necho 'Error: boom' >&2\nexit 125\n")
    os.chmod(os.path.join(d, "podman"), 0o755)
    r = a.neuro("image", "push", "train:3", env={"PATH": d + ":/usr/bin:/bin"}, expect=1)
    assert "Error: boom" in r.stderr and "podman push failed (exit code 125)" in r.stderr, r.stderr


def test_config_docker_and_the_credential_helper(tmp):
    c = Cluster(tmp, users=("alice",))
    a = c.alice
    token = a.token()
    docker_cfg = os.path.join(a.home, ".docker", "config.json")
    containers_auth = os.path.join(a.home, ".config", "containers", "auth.json")
    os.makedirs(os.path.dirname(docker_cfg))
    with open(docker_cfg, "w") as f:
        json.dump({"auths": {"other.example:5000": {"auth": "eDp5"}, c.host: {"auth": "b2xkOm9sZA=="}},
                   "HttpHeaders": {"X-Keep": "me"}}, f)
    bin_dir = os.path.join(tmp, "bin")
    os.makedirs(bin_dir)
    helper = os.path.join(bin_dir, "docker-credential-neuro")
    os.symlink(os.path.abspath(NEURO), helper)
    path = bin_dir + ":" + os.environ["PATH"]

    r = a.neuro("config", "docker", env={"PATH": path})
    assert c.host in r.stdout and docker_cfg in r.stdout and containers_auth in r.stdout, r.stdout
    assert "not on PATH" not in r.stderr, r.stderr
    # The server is plain HTTP: a registries.conf drop-in tells podman.
    insecure = os.path.join(a.home, ".config", "containers", "registries.conf.d", f"neuro-{c.host.replace(':', '_')}.conf")
    assert insecure in r.stdout, r.stdout
    assert f'location = "{c.host}"\ninsecure = true\n' in open(insecure).read()
    for f in (docker_cfg, containers_auth):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    cfg = json.load(open(docker_cfg))
    assert cfg == {"auths": {"other.example:5000": {"auth": "eDp5"}}, "HttpHeaders": {"X-Keep": "me"},
                   "credHelpers": {c.host: "neuro"}}, cfg
    assert json.load(open(containers_auth)) == {"credHelpers": {c.host: "neuro"}}
    # Twice is the same.
    a.neuro("config", "docker", env={"PATH": path})
    assert json.load(open(docker_cfg)) == cfg
    # Without the helper on PATH it says how to get it.
    r = a.neuro("config", "docker", env={"PATH": "/usr/bin:/bin"})
    assert "docker-credential-neuro is not on PATH" in r.stderr, r.stderr

    # The helper protocol, as docker and podman run it.
    r = a.neuro("get", input=c.host + "\n", argv0=helper)
    assert json.loads(r.stdout) == {"ServerURL": c.host, "Username": "alice", "Secret": token}, r.stdout
    r = a.neuro("get", input="registry.example.com\n", argv0=helper, expect=1)
    assert r.stdout.strip() == "credentials not found in native keychain"
    assert json.loads(a.neuro("list", argv0=helper).stdout) == {c.host: "alice"}
    a.neuro("erase", input=c.host, argv0=helper)
    assert json.loads(a.neuro("docker-credential", "get", input=c.host).stdout)["Secret"] == token
    a.neuro("docker-credential", "steal", expect=1)
    # A malformed auth file is left alone, with a clear message.
    with open(containers_auth, "w") as f:
        f.write("{not json")
    r = a.neuro("config", "docker", env={"PATH": path}, expect=2)
    assert containers_auth in r.stderr and "not valid JSON" in r.stderr, r.stderr
    assert open(containers_auth).read() == "{not json"
    os.unlink(containers_auth)
    a.neuro("config", "docker", env={"PATH": path})

    c.need_registry()
    pm = Podman(tmp)
    pm.build("localhost/helper:1", "helper")
    engine = {"PATH": path, **pm.env}
    remote = f"{c.host}/alice/helper:1"
    # podman alone, as the user story has it: neuro's helper answers (HOME and PATH
    # lead podman there) and the drop-in lets it talk plain HTTP.
    helper_env = dict(a.env, **engine)
    pm("push", "localhost/helper:1", remote, env=helper_env)
    assert a.neuro("image", "tags", "image:helper").stdout.split() == ["1"]
    pm("rmi", "localhost/helper:1")
    pm("pull", remote, env=helper_env)
    assert pm.exists(remote)
    pm("rmi", remote)
    # Without the helper on PATH podman has no credentials and the registry refuses.
    r = pm("pull", remote, env=dict(helper_env, PATH="/usr/bin:/bin"), expect=None)
    assert r.returncode != 0, r.stdout
    # --no-helper: the token itself in the files, no helper needed.
    r = a.neuro("config", "docker", "--no-helper", env={"PATH": "/usr/bin:/bin"})
    stored = json.load(open(containers_auth))
    assert stored == {"auths": {c.host: {"auth": base64.b64encode(f"alice:{token}".encode()).decode()}}}, stored
    pm("pull", remote, env=dict(helper_env, PATH="/usr/bin:/bin"))
    assert pm.exists(remote)


def test_size_of_a_multi_platform_index(tmp):
    c = Cluster(tmp, users=("alice",))
    c.need_registry()
    a = c.alice
    pm = Podman(tmp)
    pm.build("localhost/train:1", "one")
    pm.build("localhost/train:2", "two")
    auth = os.path.join(tmp, "auth.json")
    with open(auth, "w") as f:
        json.dump({"auths": {c.host: {"auth": base64.b64encode(f"alice:{a.token()}".encode()).decode()}}}, f)
    pm("manifest", "create", "localhost/multi:1")
    pm("manifest", "add", "--os", "linux", "--arch", "amd64", "localhost/multi:1", "containers-storage:localhost/train:1")
    pm("manifest", "add", "--os", "linux", "--arch", "arm64", "--variant", "v8", "localhost/multi:1",
       "containers-storage:localhost/train:2")
    pm("manifest", "push", "--all", "--authfile", auth, "--tls-verify=false", "localhost/multi:1",
       f"docker://{c.host}/alice/multi:1")

    size = a.json("image", "size", "image:multi:1")
    assert size["digest"] == a.neuro("image", "digest", "image:multi:1").stdout.strip(), size
    assert [p["platform"] for p in size["platforms"]] == ["linux/amd64", "linux/arm64/v8"], size
    for p in size["platforms"]:
        _, _, body = c.registry_get(a, f"/v2/alice/multi/manifests/{p['digest']}", accept=ACCEPT)
        m = json.loads(body)
        assert p["size"] == m["config"]["size"] + sum(l["size"] for l in m["layers"]), (p, m)
    table = a.neuro("image", "size", "image:multi:1").stdout.splitlines()
    assert table[0].split() == ["PLATFORM", "SIZE", "DIGEST"], table
    assert table[1].startswith("linux/amd64") and table[2].startswith("linux/arm64/v8"), table


# --- runner --------------------------------------------------------------------------------


def run_cases(tests):
    passed = failed = skipped = 0
    for t in tests:
        tmp = tempfile.mkdtemp(prefix="neurod-e2e-")
        clusters = []
        original = Cluster.__init__

        def tracking(self, *args, **kw):
            clusters.append(self)
            original(self, *args, **kw)

        Cluster.__init__ = tracking
        try:
            t(tmp)
            passed += 1
            print(f"ok   {t.__name__}")
        except Skip as e:
            skipped += 1
            print(f"SKIP {t.__name__}: {e}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
            for cl in clusters:
                if getattr(cl, "d", None) and cl.d.proc:
                    print("---- neurod log (tail) ----\n" + cl.d.output()[-3000:])
        finally:
            Cluster.__init__ = original
            for cl in clusters:
                try:
                    cl.close()
                except Exception:
                    pass
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    cases = [
        test_push_ls_tags_size_digest_pull_rm,
        test_size_of_a_multi_platform_index,
        test_errors,
        test_engines_get_credentials_in_a_private_file,
        test_config_docker_and_the_credential_helper,
    ]
    wanted = sys.argv[1:]
    run_cases([t for t in cases if not wanted or any(w in t.__name__ for w in wanted)])
