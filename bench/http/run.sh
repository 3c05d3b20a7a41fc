#!/usr/bin/env bash
# HTTP benchmark: wrk against neurod's /api/v1/ping and small JSON routes, side by side
# in the same run with Debian's nginx answering a static 200 on loopback.
#
#   bench/http/run.sh [duration=10s] [connections=64]
#   ACCESS_LOG=off bench/http/run.sh      both servers without an access log
#
# Needs: wrk, nginx-light (scripts/setup --bench), a built neurod (scripts/build).
# Both servers log every request to a file and use 2 worker threads/processes.
# Prints a Markdown table for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
CONNS=${2:-64}
THREADS=2
ACCESS_LOG=${ACCESS_LOG:-on}
NEUROD=${NEUROD_BIN:-build/src/app/neurod}
work=$(mktemp -d /tmp/neurod-bench-XXXXXX)
cleanup() {
  [ -n "${npid:-}" ] && kill "$npid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- nginx: a static 200 with a tiny JSON body ---
nport=$(free_port)
cat > "$work/nginx.conf" <<NGX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log $( [ "$ACCESS_LOG" = on ] && echo "$work/nginx-access.log" || echo off );
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '{"pong":true}'; }
  }
}
NGX
nginx -c "$work/nginx.conf"

# --- neurod ---
cat > "$work/neurod.yaml" <<YAML
data_dir: $work/data
log: {level: info}
http: {listen: "127.0.0.1:0", io_threads: 2, blocking_threads: 4, access_log: $( [ "$ACCESS_LOG" = on ] && echo true || echo false )}
YAML
"$NEUROD" --config "$work/neurod.yaml" > "$work/neurod.log" 2>&1 &
npid=$!
for _ in $(seq 1 500); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/neurod.log" | head -1 | sed 's/listening on //') && [ -n "$url" ] && break
  sleep 0.02
done
[ -n "${url:-}" ] || { cat "$work/neurod.log"; exit 1; }
sleep 1
idle_rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$npid/status)

run_wrk() {  # url -> "req/s p99_ms"
  wrk -t$THREADS -c"$CONNS" -d"$DURATION" --latency "$1" > "$work/wrk.out" 2>&1
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}

# Warm up both, then measure.
wrk -t1 -c8 -d2s "http://127.0.0.1:$nport/" >/dev/null
wrk -t1 -c8 -d2s "$url/api/v1/ping" >/dev/null
read -r nginx_rps nginx_p99 < <(run_wrk "http://127.0.0.1:$nport/")
read -r ping_rps ping_p99 < <(run_wrk "$url/api/v1/ping")
read -r ver_rps ver_p99 < <(run_wrk "$url/api/v1/version")
read -r cfg_rps cfg_p99 < <(run_wrk "$url/api/v1/config")
loaded_rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$npid/status)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "| target | req/s | p99 latency | ratio to nginx |"
echo "|---|---|---|---|"
echo "| nginx static 200 | $nginx_rps | ${nginx_p99} ms | 1.00 |"
echo "| neurod /api/v1/ping (I/O thread) | $ping_rps | ${ping_p99} ms | $(ratio "$ping_rps" "$nginx_rps") |"
echo "| neurod /api/v1/version (small JSON, I/O thread) | $ver_rps | ${ver_p99} ms | $(ratio "$ver_rps" "$nginx_rps") |"
echo "| neurod /api/v1/config (small JSON, blocking pool) | $cfg_rps | ${cfg_p99} ms | $(ratio "$cfg_rps" "$nginx_rps") |"
echo
echo "neurod RSS: idle $((idle_rss_kb / 1024)) MiB ($idle_rss_kb kB), peak under load $((loaded_rss_kb / 1024)) MiB ($loaded_rss_kb kB)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION; access logs $ACCESS_LOG for both; $(nproc) cores"
