#!/usr/bin/env bash
# Jobs benchmarks (issue 4), both side by side with references in the same run:
#
#  (a) Submissions accepted and committed per second: wrk POSTs valid job bodies
#      (submit.lua) to a neurod with `roles: [control-plane]` on SQLite, then on a throwaway
#      PostgreSQL 15 (tests/support/pg.sh). Without the compute role no executor runs, so
#      every job stays pending ("no executor runs in this process"): this measures accept +
#      validate + authorize + commit (and the scheduler's pass over its pending jobs), not
#      execution. Afterwards the jobs are counted through GET /api/v1/jobs: every 202 must be
#      in the database (a few more may be: requests wrk left in flight at the cut-off).
#      Target: ≥ 1,000/s on SQLite.
#  (b) Submit-to-running latency, JOBS jobs one at a time on each executor (latency.py):
#      the docker executor on a throwaway Podman service (tests/support/podman.sh) beside a
#      bare `podman --url … run --rm` and the bare engine API (create + start, what the
#      executor calls), then the process executor beside a bare `bwrap` with the executor's
#      sandbox arguments. Every target runs `sh -c 'busybox adjtimex'`, which prints the
#      wall clock when the command runs. Target: neurod adds ≤ 50 ms at p99 over the bare
#      engine.
#
#   bench/jobs/run.sh [duration=10s] [connections=16] [jobs=100]
#
# Needs: wrk (scripts/setup --bench), podman, buildah, runc, busybox-static, bubblewrap,
# postgresql 15 (scripts/setup --test), a built neurod (scripts/build; NEUROD_BIN overrides
# the path; it is copied first, so a rebuild during the run does not disturb it). Tried as
# root. Everything lives in a temp dir that is removed at the end. About 4-6 minutes on a
# 2-core VM, most of it the 300 Podman containers of (b). Prints Markdown tables for
# bench/RESULTS.md; the wrk outputs, neurod logs and raw latencies are lost with the temp
# dir unless KEEP=1 (then the dir is kept and named at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
DURATION=${1:-10s}
CONNS=${2:-16}
JOBS=${3:-100}
PY=/usr/bin/python3
# A short path: the Podman socket lives under it (unix socket paths are ≤ 107 bytes).
work=$(mktemp -d /tmp/nj-XXXXXX)
chmod 755 "$work"  # pg.sh runs the server as the postgres user, which must reach $work/pg
cp "${NEUROD_BIN:-build/src/app/neurod}" "$work/neurod"
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
  [[ -d $work/pg ]] && tests/support/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  [[ -d $work/pm ]] && tests/support/podman.sh stop "$work/pm" >/dev/null 2>&1 || true
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# start_neurod NAME: runs $work/NAME.yaml, sets $url and $token_file.
start_neurod() {
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
  token_file=$work/$name/auth/admin.token
}

# The same presets everywhere: jobs take the first (1 CPU, 256 MiB).
common_yaml() {  # NAME
  cat <<YAML
data_dir: $work/$1
log: {level: info}
http: {listen: "127.0.0.1:0"}
presets:
  - {name: cpu-small, cpu: 1, memory: 256MiB}
YAML
}

# ------------------------------------------------------------------------------------
# (a) submissions per second

submit_bench() {  # NAME DATABASE_YAML LABEL DURATION
  local name=$1 db=$2 label=$3 duration=$4
  { common_yaml "$name"; echo "roles: [control-plane]"; echo "database: $db"; } >"$work/$name.yaml"
  start_neurod "$name"
  export TOKEN
  TOKEN=$(cat "$token_file")
  # Warm-up (tagged apart): connections, the statement caches, the page cache.
  TAG=warmup wrk -t2 -c"$CONNS" -d2s -s bench/jobs/submit.lua "$url" >"$work/$name-warmup.out" 2>&1
  TAG=bench wrk -t2 -c"$CONNS" -d"$duration" -s bench/jobs/submit.lua "$url" >"$work/$name-wrk.out" 2>&1
  local rps accepted other p50 p99 stored
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name-wrk.out")
  accepted=$(awk '$1=="status" && $2==202 {print $3}' "$work/$name-wrk.out")
  other=$(awk '$1=="status" && $2!=202 {n+=$3} $1=="socket_errors" {n+=$2} END {print n+0}' "$work/$name-wrk.out")
  p50=$(awk '$1=="p50_ms" {print $2}' "$work/$name-wrk.out")
  p99=$(awk '$1=="p99_ms" {print $2}' "$work/$name-wrk.out")
  stored=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Accept: application/x-ndjson' \
    "$url/api/v1/jobs?tag=bench&limit=100000" | grep -c '"id"' || true)
  # More than the 202s counted: requests in flight when wrk stopped (at most one per connection).
  local verdict="all 202s stored, +$((stored - ${accepted:-0})) in flight at the cut-off"
  ((stored >= ${accepted:-0})) || verdict="MISSING $((accepted - stored))"
  rows_a+=("| $label | ${rps} | ${accepted:-0} | ${other} | ${stored} (${verdict}) | ${p50} ms | ${p99} ms | $(awk -v r="$rps" 'BEGIN {printf "%.2f", r/1000}') |")
  stop_neurod
}

rows_a=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== (a) submissions/s: wrk -t2 -c$CONNS -d$DURATION, roles [control-plane]" >&2
submit_bench sqlite "{url: \"sqlite:neurod.db\"}" "SQLite (WAL, default settings)" "$DURATION"
# pg.sh gives up when its own pg_isready probe logs "FATAL: the database system is starting
# up" during start-up (a race in the fixture); another try starts afresh.
for try in 1 2 3; do
  tests/support/pg.sh start "$work/pg" >&2 2>"$work/pg-start.err" && break
  ((try < 3)) || { cat "$work/pg-start.err" >&2; exit 1; }
  echo "pg.sh start failed (try $try); retrying" >&2
done
pg_url=$(cat "$work/pg/url")
# With the default pool (8 sessions for 8 blocking threads) concurrent submissions can
# exhaust the pool: each holds a session in its write transaction and asks for a second one
# (Service::create reads the quota limits through Quotas::limits -> db.read() inside
# db.write()); they wait out busy_timeout (5 s) and fail with 503. A short run shows it;
# the measured run gives the pool room for two sessions per thread.
# A database per run, so that each neurod bootstraps its own admin.
for d in bench bench_default; do /usr/lib/postgresql/15/bin/psql -q "$pg_url" -c "CREATE DATABASE $d" >/dev/null; done
submit_bench pg "{url: \"${pg_url%/*}/bench\", pool_size: 24}" "PostgreSQL 15, pool_size 24" "$DURATION"
submit_bench pg-default "{url: \"${pg_url%/*}/bench_default\"}" "PostgreSQL 15, default pool_size 8" 5s
tests/support/pg.sh stop "$work/pg" >/dev/null

# ------------------------------------------------------------------------------------
# (b) submit-to-running latency

echo "== (b) latency: $JOBS jobs one at a time per executor" >&2
tests/support/podman.sh start "$work/pm" >&2
sock=$(cat "$work/pm/socket")
image=$(cat "$work/pm/image")
executor_yaml() {  # RUNTIME
  echo "modules:"
  echo "  executor:"
  echo "    runtime: $1"
  echo "    capacity: {cpu: 2, memory: 4GiB, gpus: 0}"
  if [[ $1 == docker ]]; then
    # Explicit ulimits no higher than the host's (podman.sh; TESTING.md).
    echo "    docker:"
    echo "      socket: $sock"
    echo "      ulimits:"
    echo "        - {name: nofile, soft: 1024, hard: 1024}"
    echo "        - {name: nproc, soft: 4096, hard: 4096}"
  fi
}
{ common_yaml docker; executor_yaml docker; } >"$work/docker.yaml"
start_neurod docker
RAW_OUT=$work/docker.json NEUROD_LOG=$work/docker.log $PY bench/jobs/latency.py docker "$url" "$token_file" "$JOBS" "$sock" "$image" >"$work/docker.md"
stop_neurod
tests/support/podman.sh stop "$work/pm" >/dev/null

{ common_yaml process; executor_yaml process; } >"$work/process.yaml"
start_neurod process
RAW_OUT=$work/process.json NEUROD_LOG=$work/process.log $PY bench/jobs/latency.py process "$url" "$token_file" "$JOBS" >"$work/process.md"
stop_neurod

# ------------------------------------------------------------------------------------
echo
echo "### (a) submissions accepted and committed per second"
echo
echo "| database | req/s | 202s | other | jobs stored | p50 | p99 | ratio to 1,000/s |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows_a[@]}"
echo
echo "wrk -t2 -c$CONNS -d$DURATION (the default-pool PostgreSQL row: 5 s) after a 2 s warm-up; neurod roles [control-plane], so jobs stay pending; PostgreSQL from pg.sh (fsync off, synchronous_commit off); $(nproc) cores shared by wrk, neurod and the database; load average before the run: $load0"
echo
echo "### (b) submit-to-running latency"
echo
cat "$work/docker.md"
cat "$work/process.md"
echo "$(podman --version), $(bwrap --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(/usr/lib/postgresql/15/bin/postgres --version), commit $(git -C "$root" rev-parse --short HEAD)$([[ -z $(git -C "$root" status --porcelain --untracked-files=no) ]] || echo ' with uncommitted changes')"
