#!/usr/bin/env bash
# Log latency (issue 7, part 1): how long a line printed by a job takes to reach a follower.
#
# A job prints LINES lines "L <seq> <wall clock µs>" (the clock read by `busybox adjtimex`
# just before the echo), one every INTERVAL seconds. A follower stamps each line on arrival
# (log_latency.py); latency = arrival - printed, both on this host's clock. Three runs, one
# after the other on the same machine:
#   1. neurod, docker executor on a throwaway Podman service (tests/support/podman.sh,
#      log_driver k8s-file): `neuro logs -f JOB` started right after the submit;
#   2. the reference: the same container run bare by `podman run -d`, followed with
#      `podman logs -f` straight from the engine;
#   3. neurod, process executor: `neuro logs -f JOB`.
# The follower of every run counts lines missing, repeated or out of order (all must be 0).
# Target: p99 < 100 ms (the reference platform ships logs once a second).
#
#   bench/monitoring/log_latency.sh [lines=1000] [interval=0.02]
#
# Needs: podman, buildah, runc, busybox-static, bubblewrap (scripts/setup --test), a built
# neurod and neuro (scripts/build; NEUROD_BIN / NEURO_BIN override; both are copied first).
# Tried as root. About 2 minutes. Prints Markdown for bench/RESULTS.md; KEEP=1 keeps the
# temp dir (neurod logs, raw latencies per line).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
LINES=${1:-1000}
INTERVAL=${2:-0.02}
PY=/usr/bin/python3
work=$(mktemp -d /tmp/nl-XXXXXX)
chmod 755 "$work"
cp "${NEUROD_BIN:-build/src/app/neurod}" "$work/neurod"
cp "${NEURO_BIN:-build/src/cli/neuro}" "$work/neuro"
npid=

stop_neurod() {
  if [[ -n $npid ]]; then
    kill "$npid" 2>/dev/null || true
    wait "$npid" 2>/dev/null || true
    npid=
  fi
}
cleanup() {
  stop_neurod
  [[ -d $work/pm ]] && tests/support/podman.sh stop "$work/pm" >/dev/null 2>&1 || true
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

start_neurod() {  # NAME: runs $work/NAME.yaml; sets $url and $token
  local name=$1 log=$work/$1.log
  "$work/neurod" --config "$work/$name.yaml" >"$log" 2>&1 &
  npid=$!
  url=
  for _ in $(seq 1 500); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's/listening on //') && [[ -n $url ]] && break
    kill -0 "$npid" 2>/dev/null || break
    sleep 0.02
  done
  [[ -n $url ]] || { cat "$log" >&2; echo "neurod ($name) did not start" >&2; exit 1; }
  token=$(cat "$work/$name/auth/admin.token")
}

tests/support/podman.sh start "$work/pm" >&2
sock=$(cat "$work/pm/socket")
image=$(cat "$work/pm/image")

# The job: the same shell loop in every run.
script="i=1; while [ \$i -le $LINES ]; do t=\$(busybox adjtimex | busybox awk '/tv_sec/ {s=\$2} /tv_usec/ {u=\$2} END {printf \"%d%06d\", s, u}'); echo \"L \$i \$t\"; i=\$((i+1)); sleep $INTERVAL; done"

neurod_yaml() {  # NAME RUNTIME
  cat <<YAML
data_dir: $work/$1
log: {level: info}
http: {listen: "127.0.0.1:0"}
presets:
  - {name: cpu-small, cpu: 1, memory: 256MiB}
modules:
  executor:
    runtime: $2
    capacity: {cpu: 2, memory: 4GiB, gpus: 0}
YAML
  if [[ $2 == docker ]]; then
    echo "    docker:"
    echo "      socket: $sock"
    echo "      ulimits:"
    echo "        - {name: nofile, soft: 1024, hard: 1024}"
    echo "        - {name: nproc, soft: 4096, hard: 4096}"
  fi
}

neurod_run() {  # NAME RUNTIME LABEL
  neurod_yaml "$1" "$2" >"$work/$1.yaml"
  start_neurod "$1"
  local body id
  body=$($PY -c 'import json,sys; print(json.dumps({"image": sys.argv[1], "command": ["sh", "-c", sys.argv[2]]}))' "$image" "$script")
  id=$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body" "$url/api/v1/jobs" |
    $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  NEURO_CONFIG=$work/neuro.yaml NEURO_URL=$url NEURO_TOKEN=$token "$work/neuro" logs -f "$id" |
    RAW_OUT=$work/$1.raw $PY bench/monitoring/log_latency.py "$3" "$LINES"
  stop_neurod
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== neurod, docker executor" >&2
row_docker=$(neurod_run docker docker "neurod, docker executor (Podman), \`neuro logs -f\`")
echo "== reference: podman logs -f" >&2
cid=$(podman --url "unix://$sock" run -d --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$image" sh -c "$script")
row_ref=$(podman --url "unix://$sock" logs -f "$cid" 2>&1 | RAW_OUT=$work/podman.raw $PY bench/monitoring/log_latency.py "reference: \`podman logs -f\` from the engine" "$LINES")
podman --url "unix://$sock" rm -f "$cid" >/dev/null
echo "== neurod, process executor" >&2
row_process=$(neurod_run process process "neurod, process executor, \`neuro logs -f\`")

echo
echo "| follower | lines | missing / repeated / out of order | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|"
echo "$row_docker"
echo "$row_ref"
echo "$row_process"
echo
echo "$LINES lines, one every ${INTERVAL}s; followers started right after the job was submitted (run). $(nproc) cores; load average before the run: $load0; $(podman --version), $(bwrap --version), commit $(git -C "$root" rev-parse --short HEAD)$([[ -z $(git -C "$root" status --porcelain --untracked-files=no) ]] || echo ' with uncommitted changes')"
