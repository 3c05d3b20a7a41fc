#!/usr/bin/python3
"""OCI image layouts for bench/registry/run.sh, made offline, and the checks of what came back.

  oci.py build LAYOUT TOTAL_MIB LAYERS
      An OCI image layout (tag "1") of LAYERS uncompressed layers
      (application/vnd.oci.image.layer.v1.tar), TOTAL_MIB MiB of random bytes in all: each
      layer is a tar holding one file of /dev/urandom bytes, so nothing compresses. Written
      and hashed in one pass. Prints one JSON line: manifest digest, blob digests, total bytes.
  oci.py verify PULLED SOURCE
      A layout that skopeo pulled holds tag "1" with the source's manifest digest, and every
      blob it references is there and hashes to its digest.
  oci.py verify-curl DIR MANIFEST_DIGEST
      DIR/<n>/ of the concurrent curl pulls: every file named after a digest (and the manifest,
      saved as "manifest") hashes to that digest; every pull holds every blob of the manifest.
"""
import hashlib
import json
import os
import sys
import tarfile

CHUNK = 1 << 20
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


class HashingWriter:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def tell(self):
        return self.n

    def close(self):
        self.f.close()


class RandomReader:
    def __init__(self, n):
        self.left = n

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d


def build(layout, total_mib, layers):
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    per = (total_mib << 20) // layers
    descs = []
    for i in range(layers):
        tmp = os.path.join(blobs, "tmp")
        w = HashingWriter(tmp)
        with tarfile.TarFile(fileobj=w, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as t:
            ti = tarfile.TarInfo("layer%d/random.bin" % i)
            ti.size, ti.mode, ti.mtime = per, 0o644, 0
            t.addfile(ti, RandomReader(per))
        w.close()
        d = w.h.hexdigest()
        os.rename(tmp, os.path.join(blobs, d))
        descs.append({"mediaType": LAYER_TYPE, "digest": "sha256:" + d, "size": w.n})
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in descs]},
    }, sort_keys=True).encode()
    cfg = {"mediaType": CONFIG_TYPE, "digest": put_blob(layout, config), "size": len(config)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": cfg,
                           "layers": descs}, sort_keys=True).encode()
    md = put_blob(layout, manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": MANIFEST_TYPE, "digest": md, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    total = len(manifest) + cfg["size"] + sum(l["size"] for l in descs)
    print(json.dumps({"manifest": md, "config": cfg["digest"],
                      "layers": [l["digest"] for l in descs], "bytes": total}))


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return "sha256:" + h.hexdigest()
            h.update(b)


def fail(msg):
    print("oci.py: " + msg, file=sys.stderr)
    sys.exit(1)


def manifest_of(layout):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "1":
            return m["digest"]
    fail("%s has no tag 1" % layout)


def verify(pulled, source):
    want = manifest_of(source)
    got = manifest_of(pulled)
    if got != want:
        fail("%s: manifest %s, the source's is %s" % (pulled, got, want))
    blob = lambda d: os.path.join(pulled, "blobs", *d.split(":"))
    with open(blob(got), "rb") as f:
        m = json.load(f)
    for d in [got, m["config"]["digest"]] + [l["digest"] for l in m["layers"]]:
        if not os.path.exists(blob(d)):
            fail("%s: blob %s missing" % (pulled, d))
        if file_digest(blob(d)) != d:
            fail("%s: blob %s does not hash to its digest" % (pulled, d))


def verify_curl(top, manifest_digest):
    pulls = sorted(os.listdir(top))
    for p in pulls:
        d = os.path.join(top, p)
        if file_digest(os.path.join(d, "manifest")) != manifest_digest:
            fail("%s: the manifest does not hash to %s" % (d, manifest_digest))
        with open(os.path.join(d, "manifest"), "rb") as f:
            m = json.load(f)
        for digest in [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]:
            path = os.path.join(d, digest)
            if not os.path.exists(path) or file_digest(path) != digest:
                fail("%s: blob %s missing or wrong" % (d, digest))
    print(len(pulls))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "verify":
        verify(sys.argv[2], sys.argv[3])
    elif cmd == "verify-curl":
        verify_curl(sys.argv[2], sys.argv[3])
    else:
        fail("unknown command " + cmd)
