#!/usr/bin/env bash
# Port-forward throughput (issue 7, part 9): bytes through `neuro port-forward` to a server
# in a job vs a direct loopback connection to the same server program, in the same run.
#
#   bench/monitoring/port_forward.sh [MiB=256] [runs=5]
#
# neurod runs all-in-one on SQLite with the process runtime (the job shares the host's
# network; the tunnel is the whole path: client -> neuro's listener -> WebSocket ->
# neurod -> the job's socket). The server and the client are tcp_bench.py (Python,
# sendall/recv_into of 1 MiB buffers), for both paths: "get" (the job sends MiB to the
# client), "put" (the client sends to the job). Each run alternates direct and forwarded
# transfers; the figure is the median of `runs`, and the ratio is forwarded / direct.
# Target: >= 0.5x. Needs a built neurod and neuro (scripts/build; NEUROD_BIN and NEURO_BIN
# override the paths; they are copied first), bubblewrap, /usr/bin/python3. About a minute.
# Do not run it while a build runs: the machine's cores are the measurement.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
MIB=${1:-256}
RUNS=${2:-5}
PY=/usr/bin/python3
BYTES=$((MIB * 1048576))
work=$(mktemp -d /tmp/npf-XXXXXX)
cp "${NEUROD_BIN:-build/src/app/neurod}" "$work/neurod"
cp "${NEURO_BIN:-build/src/cli/neuro}" "$work/neuro"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat >"$work/neurod.yaml" <<YAML
cluster_name: bench
data_dir: $work/data
log:
  level: info
http:
  listen: 127.0.0.1:0
  access_log: false
database:
  url: "sqlite:neurod.db"
modules:
  executor:
    runtime: process
    capacity: {cpu: 2, memory: 4GiB, gpus: 0}
presets:
  - {name: cpu-small, cpu: 1, memory: 1GiB}
YAML
"$work/neurod" --config "$work/neurod.yaml" >"$work/neurod.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/neurod.log" | head -1 | sed 's/listening on //') || true
  [[ -n ${url:-} ]] && break
  sleep 0.1
done
[[ -n ${url:-} ]] || { cat "$work/neurod.log"; echo "neurod did not start" >&2; exit 1; }
export NEURO_URL=$url NEURO_CONFIG=$work/neuro.yaml
NEURO_TOKEN=$(cat "$work/data/auth/admin.token")
export NEURO_TOKEN

# The same server program twice: in a job (reached through the tunnel) and on the host.
job_port=$(free_port)
direct_port=$(free_port)
# The job sees only the host's system directories, so the program goes as its command line.
job=$("$work/neuro" run --detach localhost/bb:1 -- $PY -c "$(cat "$root/bench/monitoring/tcp_bench.py")" serve "$job_port")
$PY bench/monitoring/tcp_bench.py serve "$direct_port" &
pids+=($!)
for _ in $(seq 300); do
  [[ $("$work/neuro" -o json status "$job" | $PY -c 'import json,sys; print(json.load(sys.stdin)["status"])') == running ]] && break
  sleep 0.1
done
"$work/neuro" port-forward "$job" "0:$job_port" >"$work/pf.out" 2>"$work/pf.err" &
pids+=($!)
for _ in $(seq 100); do
  local_port=$(sed -n 's/^Forwarding 127.0.0.1:\([0-9]*\) .*/\1/p' "$work/pf.out")
  [[ -n $local_port ]] && break
  sleep 0.1
done
[[ -n ${local_port:-} ]] || { cat "$work/pf.err"; exit 1; }
# Wait for the job's server to listen (the tunnel refuses until then).
for _ in $(seq 100); do
  $PY bench/monitoring/tcp_bench.py get 127.0.0.1 "$local_port" 1024 >/dev/null 2>&1 && break
  sleep 0.2
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "port-forward benchmark: $MIB MiB per transfer, $RUNS runs, $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
printf '| direction | direct loopback MiB/s | through neuro port-forward MiB/s | ratio |\n|---|---|---|---|\n'
for op in get put; do
  : >"$work/direct.$op"
  : >"$work/fwd.$op"
  for _ in $(seq "$RUNS"); do
    $PY bench/monitoring/tcp_bench.py "$op" 127.0.0.1 "$direct_port" "$BYTES" >>"$work/direct.$op"
    $PY bench/monitoring/tcp_bench.py "$op" 127.0.0.1 "$local_port" "$BYTES" >>"$work/fwd.$op"
  done
  d=$(median <"$work/direct.$op")
  f=$(median <"$work/fwd.$op")
  printf '| %s (%s) | %s (runs: %s) | %s (runs: %s) | %.2f |\n' "$op" \
    "$([[ $op == get ]] && echo 'job to client' || echo 'client to job')" \
    "$d" "$(tr '\n' ' ' <"$work/direct.$op" | sed 's/ $//')" "$f" "$(tr '\n' ' ' <"$work/fwd.$op" | sed 's/ $//')" \
    "$(echo "$f / $d" | bc -l)"
done
"$work/neuro" kill "$job" >/dev/null
