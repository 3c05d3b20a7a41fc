"""The registry with real clients (modules/registry/README.md): skopeo copies an OCI layout
built here offline (a busybox-static layer made with tar) into neurod and back with its
digests preserved; podman logs in through the token flow, pushes and pulls; another user is
refused; `neurod registry gc` runs offline.

By hand: `python3 test_registry_clients.py podman` runs the cases whose names contain a word given."""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request

from harness import NEUROD, Neurod, main, run

AUTH_YAML = "modules:\n  auth:\n    password_hash_memory: 1MiB\n    password_hash_iterations: 1\n"
PODMAN_DIR = os.environ.get("NEUROD_TEST_PODMAN_DIR", "")
BUSYBOX = os.environ.get("NEUROD_TEST_BUSYBOX", "/bin/busybox")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(layout, data):
    digest = sha256(data)
    path = os.path.join(layout, "blobs", "sha256", digest[7:])
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def build_layout(layout, tag="1"):
    """An OCI image layout: one gzip layer with /bin/busybox and /bin/sh, a config, a manifest."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        with open(BUSYBOX, "rb") as f:
            body = f.read()
        b = tarfile.TarInfo("bin/busybox")
        b.size = len(body)
        b.mode = 0o755
        tar.addfile(b, io.BytesIO(body))
        s = tarfile.TarInfo("bin/sh")
        s.type = tarfile.SYMTYPE
        s.linkname = "busybox"
        tar.addfile(s)
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar_bytes)
    layer = write_blob(layout, gz.getvalue())
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
    }, separators=(",", ":")).encode()
    cfg = write_blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }, separators=(",", ":")).encode()
    man = write_blob(layout, manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return manifest, [layer["digest"], cfg["digest"]]


def start(tmp):
    d = Neurod(tmp, extra_yaml=AUTH_YAML).start()
    token = open(os.path.join(d.data_dir, "auth", "admin.token")).read().strip()
    host = d.url.split("://", 1)[1]
    return d, token, host


def make_user(d, admin_token, name):
    def call(path, body, token=None):
        req = urllib.request.Request(d.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": "Bearer " + token} if token else {})})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())
    call("/api/v1/users", {"name": name, "password": "correct horse battery"}, admin_token)
    return call("/api/v1/auth/login", {"user": name, "password": "correct horse battery"})["token"]


def skopeo(*args, expect=0, timeout=180):
    r = run(["skopeo", "--insecure-policy", *args], timeout=timeout)
    if expect is not None:
        assert r.returncode == expect, f"skopeo {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_skopeo_round_trip_preserves_digests(tmp):
    if not shutil.which("skopeo"):
        raise RuntimeError("skopeo is not installed (scripts/setup --test)")
    d, token, host = start(tmp)
    try:
        layout = os.path.join(tmp, "layout")
        manifest, blobs = build_layout(layout)
        creds = "admin:" + token
        ref = f"docker://{host}/admin/busybox:1"
        skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:1", ref)
        raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, ref).stdout
        assert raw.encode() == manifest, f"the manifest changed on the way:\n{raw}\n{manifest.decode()}"
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds, ref).stdout)
        assert info["Digest"] == sha256(manifest), info
        # Back out into a fresh layout: the same bytes under the same digests.
        back = os.path.join(tmp, "back")
        skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds, ref, f"oci:{back}:1")
        for digest in blobs + [sha256(manifest)]:
            a = open(os.path.join(layout, "blobs", "sha256", digest[7:]), "rb").read()
            b = open(os.path.join(back, "blobs", "sha256", digest[7:]), "rb").read()
            assert a == b, digest
        # Tags through the API, and a second tag by copying within the registry (a mount).
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds,
               ref, f"docker://{host}/admin/copy:2")
        tags = json.loads(skopeo("list-tags", "--tls-verify=false", "--creds", creds, f"docker://{host}/admin/busybox").stdout)
        assert tags["Tags"] == ["1"], tags

        # Another user may neither push into admin's project nor read it.
        bob = make_user(d, token, "bob")
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:" + bob, f"oci:{layout}:1",
                   f"docker://{host}/admin/stolen:1", expect=None)
        assert r.returncode != 0, r.stdout
        r = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "bob:" + bob, ref, expect=None)
        assert r.returncode != 0, r.stdout
        # ... but may push into his own.
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:" + bob, f"oci:{layout}:1",
               f"docker://{host}/bob/busybox:1")
        # Without credentials: refused.
        r = skopeo("inspect", "--raw", "--tls-verify=false", "--no-creds", ref, expect=None)
        assert r.returncode != 0, r.stdout
        # The offline collector beside the running daemon: everything is referenced.
        r = run([NEUROD, "-c", d.config, "registry", "gc", "--dry-run", "--grace", "0s"])
        assert r.returncode == 0, r.stderr
        assert "would remove 0 blobs" in r.stdout, r.stdout
    finally:
        d.stop()
    # Offline garbage collection: everything is referenced, nothing goes.
    r = run([NEUROD, "-c", d.config, "registry", "gc", "--grace", "0s"])
    assert r.returncode == 0, r.stderr
    assert "removed 0 blobs" in r.stdout, r.stdout


def test_podman_login_push_pull(tmp):
    if not PODMAN_DIR or not os.path.exists(os.path.join(PODMAN_DIR, "env")):
        raise RuntimeError("no test Podman storage: CTest's podman.start fixture makes one (tests/support/podman.sh)")
    image = open(os.path.join(PODMAN_DIR, "image")).read().strip()
    env = {"CONTAINERS_CONF": os.path.join(PODMAN_DIR, "containers.conf"),
           "CONTAINERS_STORAGE_CONF": os.path.join(PODMAN_DIR, "storage.conf")}
    d, token, host = start(tmp)
    authfile = os.path.join(tmp, "auth.json")
    target = f"{host}/admin/pushed:1"

    def podman(*args, expect=0):
        r = run(["podman", *args], env=env, timeout=300)
        if expect is not None:
            assert r.returncode == expect, f"podman {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    try:
        bad = podman("login", "--tls-verify=false", "--authfile", authfile, "-u", "admin", "-p", "nd_wrong", host,
                     expect=None)
        assert bad.returncode != 0, bad.stdout
        r = run(["podman", "login", "--tls-verify=false", "--authfile", authfile, "-u", "admin", "--password-stdin", host],
                env=env, input=token + "\n", timeout=60)
        assert r.returncode == 0, r.stderr
        podman("push", "--tls-verify=false", "--authfile", authfile, image, target)
        podman("rmi", "-f", target, expect=None)
        podman("pull", "--tls-verify=false", "--authfile", authfile, target)
        local = json.loads(podman("image", "inspect", target).stdout)[0]
        original = json.loads(podman("image", "inspect", image).stdout)[0]
        # The same image: its config (and so its ID) survived the round trip.
        assert local["Id"] == original["Id"], (local["Id"], original["Id"])
        podman("rmi", "-f", target, expect=None)
    finally:
        d.stop()


if __name__ == "__main__":
    wanted = sys.argv[1:]
    tests = [test_skopeo_round_trip_preserves_digests, test_podman_login_push_pull]
    main([t for t in tests if not wanted or any(w in t.__name__ for w in wanted)])
