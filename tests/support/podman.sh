#!/usr/bin/env bash
# A throwaway Podman API service for the docker executor's tests (TESTING.md).
#
#   podman.sh start DIR   starts `podman system service` on DIR/podman.sock with its own
#                         storage, run and temp dirs under DIR, builds the test image offline
#                         from busybox-static, and writes the socket path to DIR/socket and
#                         the image name to DIR/image. Does nothing when it is already up.
#   podman.sh stop DIR    removes every container of that service, stops it and removes DIR.
#
# Everything the engine needs lives in DIR/containers.conf and DIR/storage.conf (neurod only
# talks to the socket, so runtime settings belong to the service). To use the podman CLI on
# the same storage: `source DIR/env; podman ps -a`.
#
# What this machine kind needs (TESTING.md): runc (crun fails on the hybrid cgroup v1 layout),
# the cgroupfs manager (no systemd), explicit ulimits no higher than the host's, and the file
# events backend (no journald). conmon 2.1.6 writes its OOM marker into its working directory
# while podman 4.3 looks for it in the bundle directory, so conmon runs through a wrapper that
# starts it there; without it State.OOMKilled is never set.
set -euo pipefail

IMAGE=localhost/neurod-test/busybox:1
SHORT_IMAGE=localhost/bb:1
BUSYBOX=${NEUROD_TEST_BUSYBOX:-/bin/busybox}
START_DEADLINE_S=${PODMAN_START_DEADLINE_S:-60}

die() { echo "podman.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: podman.sh start|stop DIR"
cmd=$1
dir=$2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sock=$dir/podman.sock
# A unix socket path holds at most 107 bytes.
((${#sock} <= 100)) || die "$sock is too long for a unix socket; use a shorter DIR"

export CONTAINERS_CONF=$dir/containers.conf
export CONTAINERS_STORAGE_CONF=$dir/storage.conf
# Registries on loopback (the neurod under test serves /v2/ over plain HTTP) are used
# without TLS; nothing else is searched. The fixture itself pulls nothing.
export CONTAINERS_REGISTRIES_CONF=$dir/registries.conf

have() { command -v "$1" >/dev/null 2>&1; }

ping_ok() {
  [[ -S $sock ]] && curl -fsS --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
}

service_pid() {
  [[ -f $dir/podman.pid ]] || return 1
  local pid
  pid=$(cat "$dir/podman.pid")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Host limits: a container's ulimits may not exceed them (no CAP_SYS_RESOURCE).
limit() {
  local soft hard cap=$2
  soft=$(ulimit -S "$1")
  hard=$(ulimit -H "$1")
  [[ $hard == unlimited || $hard -gt $cap ]] && hard=$cap
  [[ $soft == unlimited || $soft -gt $hard ]] && soft=$hard
  echo "$soft:$hard"
}

write_config() {
  mkdir -p "$dir/storage" "$dir/run" "$dir/tmp" "$dir/volumes"
  cat >"$dir/conmon" <<'EOF'
#!/bin/sh
# Starts conmon in the container's bundle dir (see podman.sh) so its "oom" marker lands
# where podman looks for it.
prev=
for a in "$@"; do
  case $prev in -b | --bundle) cd "$a" ;; esac
  case $a in --bundle=*) cd "${a#--bundle=}" ;; esac
  prev=$a
done
exec /usr/bin/conmon "$@"
EOF
  chmod +x "$dir/conmon"
  local nofile nproc
  nofile=$(limit -n 1024)
  nproc=$(limit -u 4096)
  cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile", "nproc=$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
conmon_path = ["$dir/conmon"]
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
EOF
  # vfs: a 2 MB image is copied per container, and nothing stays mounted under DIR.
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/run"
EOF
  cat >"$dir/registries.conf" <<EOF
unqualified-search-registries = []

[[registry]]
location = "127.0.0.1"
insecure = true
EOF
  cat >"$dir/env" <<EOF
export CONTAINERS_CONF=$dir/containers.conf
export CONTAINERS_STORAGE_CONF=$dir/storage.conf
export CONTAINERS_REGISTRIES_CONF=$dir/registries.conf
EOF
}

build_image() {
  if podman image exists "$IMAGE" && podman image exists "$SHORT_IMAGE"; then return 0; fi
  [[ -x $BUSYBOX ]] || die "$BUSYBOX is missing (apt-get install busybox-static)"
  local ctx=$dir/image-build
  rm -rf "$ctx"
  mkdir -p "$ctx/root/bin"
  cp "$BUSYBOX" "$ctx/root/bin/busybox"
  cat >"$ctx/Containerfile" <<'EOF'
FROM scratch
COPY root/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
EOF
  podman build --network none --ulimit "nofile=$(limit -n 1024)" --ulimit "nproc=$(limit -u 4096)" \
    -t "$IMAGE" "$ctx" >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; die "cannot build $IMAGE"; }
  podman tag "$IMAGE" "$SHORT_IMAGE"
  rm -rf "$ctx"
}

show_log_and_die() {
  echo "---- $dir/service.log ----" >&2
  tail -n 50 "$dir/service.log" >&2 2>/dev/null || echo "(no service log)" >&2
  echo "--------------------------" >&2
  die "$*"
}

start() {
  have podman || die "podman is not installed (apt-get install podman buildah busybox-static runc uidmap)"
  have curl || die "curl is not installed"
  if service_pid >/dev/null && ping_ok && [[ -s $dir/socket && -s $dir/image ]]; then
    echo "podman.sh: already running: $(cat "$dir/socket")"
    return 0
  fi
  # Anything left over (a crashed service, half-written files) is thrown away.
  stop_service
  write_config
  build_image
  rm -f "$sock"
  # setsid + closed descriptors: CTest must not wait for the service's output.
  setsid podman system service --time=0 "unix://$sock" </dev/null >"$dir/service.log" 2>&1 9>&- &
  echo $! >"$dir/podman.pid"
  local deadline=$((SECONDS + START_DEADLINE_S))
  until ping_ok; do
    service_pid >/dev/null || show_log_and_die "podman system service exited"
    ((SECONDS < deadline)) || show_log_and_die "no answer on $sock after ${START_DEADLINE_S}s"
    sleep 0.1
  done
  echo "$sock" >"$dir/socket"
  echo "$IMAGE" >"$dir/image"
  echo "podman.sh: started $sock ($(podman --version)), image $IMAGE"
}

# Removes every container of this storage (the tests' leftovers) and stops the service.
stop_service() {
  if [[ -f $dir/containers.conf ]]; then
    podman rm --all --force --time 0 >/dev/null 2>&1 || true
  fi
  local pid
  if pid=$(service_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/podman.pid" "$dir/socket" "$sock"
}

stop() {
  if [[ -f $dir/containers.conf ]]; then
    stop_service
    # Per-container shm mounts are gone with the containers; anything still mounted under
    # DIR (a crashed run) is unmounted so that it can be removed.
    if have findmnt; then
      local m
      for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
    fi
  fi
  # conmon of an exec session lingers (--exit-delay 300) after the service stopped and writes
  # its exit file into the storage when it ends: it goes with the fixture.
  pkill -KILL -f -- "$dir/storage/" 2>/dev/null || true
  # A container the service was still tearing down can add files while rm walks the tree
  # ("Directory not empty", seen once in CI): try again for a few seconds.
  local i
  for i in 1 2 3 4 5; do
    rm -rf "$dir" 2>/dev/null && break
    sleep 1
  done
  rm -rf "$dir"
  echo "podman.sh: stopped"
}

# One start/stop at a time per DIR.
exec 9>"$dir.lock"
flock 9

case $cmd in
  start) start ;;
  stop) stop; rm -f "$dir.lock" ;;
  *) die "usage: podman.sh start|stop DIR" ;;
esac
