#!/usr/bin/env bash
# Storage benchmarks (issue part 6), each side by side with a reference in the same run:
#
#  (a) One big file (SIZE_MIB, default 1 GiB, random bytes made once) uploaded and downloaded
#      with curl on loopback: neurod's `PUT /api/v1/storage/{project}/{path}` (streamed to a
#      temp file, fsynced, renamed into place; 201 only after that) beside Debian's nginx
#      (WebDAV PUT: temp file + rename, no fsync), and `GET` of the file from both (nginx: a
#      plain static GET with `sendfile on`, Debian's default). REPS repetitions, the order
#      alternating each time; median MB/s and the ratio neurod/nginx. An extra column times
#      nginx's PUT followed by `sync FILE` (fsync of the new file): the like-for-like
#      durability comparison. Target: ≥ 0.9× nginx (plain).
#  (b) FILES files of 4 KiB in a nested tree (100 per directory) copied with
#      `neuro cp -r DIR storage:…` (--jobs JOBS, default 8 as neuro's own default) beside
#      `rclone copy DIR :webdav:…` into the same nginx (rclone's defaults: --transfers 4; and
#      --transfers JOBS), each into a fresh destination, the order rotating. Debian's rclone
#      1.60 paces every WebDAV request of a remote to one per 10 ms (a fixed minimum sleep that
#      1.60 has no flag for), so its copies take minutes: rclone runs in the first RCLONE_REPS
#      repetitions (default 1), neuro in all REPS_B (default 3). Beside them, as a reference
#      without rclone's listing and pacing, curl's parallel mode (-Z, JOBS at once) PUTs the
#      same files to nginx. Median seconds, files/s and the ratio its time / neuro's time.
#      Target: rclone's time / neuro's ≥ 1.0.
#  (c) The download direction of (b): `neuro cp -r storage:… DIR` beside `rclone copy
#      :webdav:… DIR` (and curl -Z GETs) of the tree uploaded in (b), into fresh local dirs.
#
#   bench/storage/run.sh [size_mib=1024] [reps=5] [files=10000] [reps_b=3]
#
# Needs: curl, nginx-light with libnginx-mod-http-dav-ext (PROPFIND, which rclone lists
# with), rclone (scripts/setup --bench). neurod and neuro from NEUROD_BIN / NEURO_BIN, else
# built into build-bench/ by scripts/build (RelWithDebInfo); both are copied first, so a
# rebuild during the run does not disturb them. JOBS sets neuro's --jobs (default 8).
# Everything lives in one temp dir under TMPDIR (default /tmp), so neurod's storage root and
# nginx's document root are on the same file system; it is removed at the end unless KEEP=1.
# Both servers write an access log. About 20 minutes on a 2-core VM, 13 of them rclone. Prints Markdown
# tables for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
SIZE_MIB=${1:-1024}
REPS=${2:-5}
FILES=${3:-10000}
REPS_B=${4:-3}
RCLONE_REPS=${RCLONE_REPS:-1}
JOBS=${JOBS:-8}
PY=/usr/bin/python3
export NO_COLOR=1

if [[ -z ${NEUROD_BIN:-} || -z ${NEURO_BIN:-} ]]; then
  NEUROD_BUILD_DIR=build-bench scripts/build neurod neuro >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ns-XXXXXX")
cp "${NEUROD_BIN:-build-bench/src/app/neurod}" "$work/neurod"
cp "${NEURO_BIN:-build-bench/src/cli/neuro}" "$work/neuro"
commit="$(git rev-parse --short HEAD)$([[ -z $(git status --porcelain --untracked-files=no) ]] || echo ' with uncommitted changes in the tree')"
npid=
cleanup() {
  [[ -n $npid ]] && { kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null; } || true
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rounded() { $PY -c 'import sys; print(" ".join(format(float(x), sys.argv[1]) for x in sys.argv[2:]))' "$@"; }
median() { $PY -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
fmt() { $PY -c 'import sys; print(format(float(sys.argv[2]), sys.argv[1]))' "$@"; }
ratio() { $PY -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$@"; }

# --- nginx: WebDAV PUT (+ PROPFIND for rclone) and static GET on one document root ---------
mkdir -p "$work/srv/dav" "$work/nginx-tmp"
nport=$(free_port)
# Debian's defaults where they matter: worker_processes auto, sendfile on, tcp_nopush on.
# The body temp dir sits on the same file system as the root: the PUT is a rename, not a copy.
# Workers run as the invoking user (as neurod does): root's default would be nobody, who
# cannot enter the private temp dir (nginx ignores the directive when not started as root).
cat >"$work/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
user $(id -un) $(id -gn);
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  types_hash_max_size 2048;
  default_type application/octet-stream;
  access_log $work/nginx-access.log;
  client_body_temp_path $work/nginx-tmp/body;
  proxy_temp_path $work/nginx-tmp/proxy;
  fastcgi_temp_path $work/nginx-tmp/fastcgi;
  uwsgi_temp_path $work/nginx-tmp/uwsgi;
  scgi_temp_path $work/nginx-tmp/scgi;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$nport;
    root $work/srv;
    location /dav/ {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
    location /files/ { alias $work/srv/dav/; }  # plain static GET of what the DAV PUT stored
  }
}
NGX
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" 2>/dev/null
ngx=http://127.0.0.1:$nport

# --- neurod (SQLite, defaults otherwise) and neuro logged in as the bootstrap admin ----------
cat >"$work/neurod.yaml" <<YAML
data_dir: $work/data
log: {level: info}
http: {listen: "127.0.0.1:0"}
YAML
"$work/neurod" --config "$work/neurod.yaml" >"$work/neurod.log" 2>&1 &
npid=$!
url=
for _ in $(seq 1 500); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/neurod.log" | head -1 | sed 's/listening on //') && [[ -n $url ]] && break
  kill -0 "$npid" 2>/dev/null || break
  sleep 0.02
done
[[ -n $url ]] || { cat "$work/neurod.log" >&2; echo "neurod did not start" >&2; exit 1; }
TOKEN=$(cat "$work/data/auth/admin.token")
export NEURO_CONFIG=$work/neuro.yaml NEURO_URL=$url NEURO_TOKEN=
"$work/neuro" login "$url" --token-stdin <<<"$TOKEN" >/dev/null
project=$("$work/neuro" -o json whoami 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>/dev/null || echo admin)
api=$url/api/v1/storage/$project
sroot=$work/data/storage/$project
auth=(-H "Authorization: Bearer $TOKEN")
rclone_conf=$work/rclone.conf
: >"$rclone_conf"
rc() { env -u AWS_CA_BUNDLE rclone --config "$rclone_conf" --webdav-url "$ngx/dav" --webdav-vendor other -q "$@"; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "neurod $url (storage root $sroot), nginx $ngx (root $work/srv); load $load0" >&2

# ------------------------------------------------------------------------------------------
# (a) one big file

echo "== (a) ${SIZE_MIB} MiB file, $REPS repetitions" >&2
big=$work/big.bin
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$big"
bytes=$(stat -c %s "$big")
sum=$(md5sum <"$big" | cut -d' ' -f1)
cat "$big" >/dev/null  # the source in the page cache for every upload
declare -A col
add() { col[$1]+=" $2"; }
mbps() { $PY -c 'import sys; print("%.1f" % (float(sys.argv[1]) / float(sys.argv[2]) / 1e6))' "$bytes" "$1"; }

put_neurod() {
  local t
  t=$(curl -fsS "${auth[@]}" -T "$big" -o /dev/null -w '%{time_total}' "$api/bench/a/big.bin")
  add neurod_put "$(mbps "$t")"
}
put_nginx() {
  local t0 t1 t2
  t0=$(now)
  curl -fsS -T "$big" -o /dev/null "$ngx/dav/a/big.bin"
  t1=$(now)
  sync "$work/srv/dav/a/big.bin"  # fsync(2) of the new file only
  t2=$(now)
  add nginx_put "$(mbps "$($PY -c "print($t1-$t0)")")"
  add nginx_put_sync "$(mbps "$($PY -c "print($t2-$t0)")")"
}
get_neurod() {
  local t
  t=$(curl -fsS "${auth[@]}" -o /dev/null -w '%{time_total}' "$api/bench/a/big.bin")
  add neurod_get "$(mbps "$t")"
}
get_nginx() {
  local t
  t=$(curl -fsS -o /dev/null -w '%{time_total}' "$ngx/files/a/big.bin")
  add nginx_get "$(mbps "$t")"
}
fresh() {
  if [[ $1 == neurod ]]; then rm -f "$sroot/bench/a/big.bin"; else rm -f "$work/srv/dav/a/big.bin"; fi
  sync
}
check_big() {  # both stored files are the source, byte for byte
  for f in "$sroot/bench/a/big.bin" "$work/srv/dav/a/big.bin"; do
    [[ $(md5sum <"$f" | cut -d' ' -f1) == "$sum" ]] || { echo "$f differs from the source" >&2; exit 1; }
  done
}
# Warm-up (not counted): connections, the servers' first allocations.
put_neurod; put_nginx; get_neurod; get_nginx; check_big
col=()
for i in $(seq 1 "$REPS"); do
  # Each PUT makes a fresh file, and its own old copy is deleted just before (not timed):
  # on this VM a write into memory that a deletion has just freed runs about twice as fast
  # as one that needs memory the guest has not touched lately (seen on tmpfs as well as on
  # disk), so deleting both files at the start of a repetition favoured whichever server
  # went first. `sync` before each PUT: the other's dirty pages are not written back during it.
  if ((i % 2)); then fresh neurod; put_neurod; fresh nginx; put_nginx; else fresh nginx; put_nginx; fresh neurod; put_neurod; fi
  if ((i % 2)); then get_nginx; get_neurod; else get_neurod; get_nginx; fi
  echo "   rep $i: put neurod/nginx/nginx+sync MB/s:$(for k in neurod_put nginx_put nginx_put_sync; do echo -n " ${col[$k]##* }"; done)," \
    "get neurod/nginx:$(for k in neurod_get nginx_get; do echo -n " ${col[$k]##* }"; done)" >&2
done
check_big
declare -A med
for k in "${!col[@]}"; do med[$k]=$(median ${col[$k]}); done

# ------------------------------------------------------------------------------------------
# (b) many small files, (c) back again

echo "== (b) $FILES files of 4 KiB, $REPS_B repetitions ($RCLONE_REPS for rclone); (c) the download direction" >&2
tree=$work/tree
$PY - "$tree" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(4096))
EOF
ndirs=$(find "$tree" -mindepth 1 -type d | wc -l)
find "$tree" -type f -exec cat {} + >/dev/null  # in the page cache for everyone
(cd "$tree" && find . -type f | sed 's|^\./||' | sort) >"$work/files.txt"
# curl's parallel transfers (-Z) from a config file: one PUT or GET per file on kept-alive
# connections, nothing else (no listing, no MKCOL: create_full_put_path makes the
# directories): what nginx takes from a plain parallel client, not a copy tool.
curl_cfg() {  # up|down DEST_NAME
  if [[ $1 == up ]]; then
    awk -v t="$tree/" -v u="$ngx/dav/b/$2/" '{printf "upload-file = \"%s%s\"\nurl = \"%s%s\"\noutput = \"/dev/null\"\n", t, $0, u, $0}' "$work/files.txt"
  else
    awk -v d="$work/down/$2/" -v u="$ngx/files/b/curl-1/" '{printf "url = \"%s%s\"\noutput = \"%s%s\"\n", u, $0, d, $0}' "$work/files.txt"
  fi >"$work/curl-$1-$2.cfg"
}
declare -A bt
addt() { bt[$1]+=" $2"; }
timed() {  # KEY COMMAND...: runs it, adds its wall time in seconds
  local key=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  addt "$key" "$($PY -c "print($t1-$t0)")"
}
verify() {  # DIR: every file there, same bytes
  local n
  n=$(find "$1" -type f | wc -l)
  ((n == FILES)) || { echo "$1 holds $n files, not $FILES" >&2; exit 1; }
  diff -rq "$tree" "$1" >/dev/null || { echo "$1 differs from the source" >&2; exit 1; }
}
pcurl() { curl -sSf -Z --parallel-max "$JOBS" --create-dirs -K "$1" 2>>"$work/curl.err"; }
up_neuro() { timed up_neuro "$work/neuro" cp -r -q -j "$JOBS" "$tree" "storage:bench/b/neuro-$1"; }
up_rclone() { timed up_rclone rc copy "$tree" ":webdav:b/rclone-$1"; }
up_rclone_j() { timed up_rclone_j rc copy --transfers "$JOBS" "$tree" ":webdav:b/rclonej-$1"; }
up_curl() { curl_cfg up "curl-$1"; timed up_curl pcurl "$work/curl-up-curl-$1.cfg"; }
down_neuro() { timed down_neuro "$work/neuro" cp -r -q -j "$JOBS" "storage:bench/b/neuro-1" "$work/down/neuro-$1"; }
down_rclone() { timed down_rclone rc copy ":webdav:b/rclone-1" "$work/down/rclone-$1"; }
down_rclone_j() { timed down_rclone_j rc copy --transfers "$JOBS" ":webdav:b/rclone-1" "$work/down/rclonej-$1"; }
down_curl() { curl_cfg down "curl-$1"; timed down_curl pcurl "$work/curl-down-curl-$1.cfg"; }
mkdir -p "$work/down"
last() { [[ -n ${bt[$1]:-} ]] && fmt .2f "${bt[$1]##* }" || echo -; }
for i in $(seq 1 "$REPS_B"); do
  # rclone is paced to 100 requests/s (below): its runs take minutes, so it runs in the
  # first RCLONE_REPS repetitions only. The order rotates each repetition.
  if ((i <= RCLONE_REPS)); then ups=(up_neuro up_rclone up_curl up_rclone_j); else ups=(up_neuro up_curl); fi
  n=${#ups[@]}
  for k in $(seq 0 $((n - 1))); do "${ups[$(((k + i - 1) % n))]}" "$i"; done
  echo "   rep $i up (s): neuro $(last up_neuro), curl -Z $(last up_curl)$( ((i <= RCLONE_REPS)) && echo ", rclone $(last up_rclone), rclone -j$JOBS $(last up_rclone_j)")" >&2
  if ((i == 1)); then
    verify "$sroot/bench/b/neuro-1"; verify "$work/srv/dav/b/curl-1"; verify "$work/srv/dav/b/rclone-1"; verify "$work/srv/dav/b/rclonej-1"
  fi
  if ((i <= RCLONE_REPS)); then downs=(down_neuro down_rclone down_curl down_rclone_j); else downs=(down_neuro down_curl); fi
  for k in $(seq 0 $((n - 1))); do "${downs[$(((k + i - 1) % n))]}" "$i"; done
  echo "   rep $i down (s): neuro $(last down_neuro), curl -Z $(last down_curl)$( ((i <= RCLONE_REPS)) && echo ", rclone $(last down_rclone), rclone -j$JOBS $(last down_rclone_j)")" >&2
  if ((i == 1)); then
    verify "$work/down/neuro-1"; verify "$work/down/curl-1"; verify "$work/down/rclone-1"; verify "$work/down/rclonej-1"
  fi
done
for k in "${!bt[@]}"; do med[$k]=$(median ${bt[$k]}); done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------------
echo
echo "### (a) one $SIZE_MIB MiB file over loopback (curl), median of $REPS"
echo
echo "| direction | neurod MB/s | nginx MB/s | **neurod / nginx** | nginx + fsync MB/s | neurod / (nginx + fsync) |"
echo "|---|---|---|---|---|---|"
echo "| upload (PUT) | $(fmt .1f "${med[neurod_put]}") | $(fmt .1f "${med[nginx_put]}") | **$(ratio "${med[neurod_put]}" "${med[nginx_put]}")** | $(fmt .1f "${med[nginx_put_sync]}") | $(ratio "${med[neurod_put]}" "${med[nginx_put_sync]}") |"
echo "| download (GET) | $(fmt .1f "${med[neurod_get]}") | $(fmt .1f "${med[nginx_get]}") | **$(ratio "${med[neurod_get]}" "${med[nginx_get]}")** | | |"
echo
echo "Every run in order (MB/s): neurod PUT $(rounded .0f ${col[neurod_put]}); nginx PUT $(rounded .0f ${col[nginx_put]}); nginx PUT + fsync $(rounded .0f ${col[nginx_put_sync]}); neurod GET $(rounded .0f ${col[neurod_get]}); nginx GET $(rounded .0f ${col[nginx_get]})."
echo
echo "### (b, c) $FILES files of 4 KiB in $ndirs directories: median of $REPS_B (rclone: of $RCLONE_REPS)"
echo
echo "| direction | copier | seconds | files/s | **its time / neuro's time** |"
echo "|---|---|---|---|---|"
row() {  # DIRECTION LABEL KEY NEURO_KEY
  echo "| $1 | $2 | $(fmt .2f "${med[$3]}") | $($PY -c "print(round($FILES/${med[$3]}))") | $( [[ $3 == "$4" ]] && echo 1.00 || echo "**$(ratio "${med[$3]}" "${med[$4]}")**") |"
}
row upload "neuro cp -r -j$JOBS → neurod" up_neuro up_neuro
row upload "rclone copy → nginx WebDAV (defaults: --transfers 4)" up_rclone up_neuro
row upload "rclone copy --transfers $JOBS → nginx WebDAV" up_rclone_j up_neuro
row upload "(reference) curl -Z --parallel-max $JOBS, bare PUTs → nginx" up_curl up_neuro
row download "neuro cp -r -j$JOBS ← neurod" down_neuro down_neuro
row download "rclone copy ← nginx WebDAV (defaults: --transfers 4)" down_rclone down_neuro
row download "rclone copy --transfers $JOBS ← nginx WebDAV" down_rclone_j down_neuro
row download "(reference) curl -Z --parallel-max $JOBS, bare GETs ← nginx" down_curl down_neuro
echo
echo "Every run in order (s): up neuro $(rounded .2f ${bt[up_neuro]}); up rclone $(rounded .1f ${bt[up_rclone]}); up rclone -j$JOBS $(rounded .1f ${bt[up_rclone_j]}); up curl $(rounded .2f ${bt[up_curl]}); down neuro $(rounded .2f ${bt[down_neuro]}); down rclone $(rounded .1f ${bt[down_rclone]}); down rclone -j$JOBS $(rounded .1f ${bt[down_rclone_j]}); down curl $(rounded .2f ${bt[down_curl]})."
echo
echo "$(nproc) cores shared by clients and servers; load average before $load0, after $load1; $(nginx -v 2>&1 | sed 's/.*: //') ($(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' nginx-light nginx-core nginx-full 2>/dev/null | awk '$1=="ii" {print $2}') + dav-ext, sendfile on), $(rclone version | head -1 | cut -d' ' -f1-2), $(curl --version | head -1 | cut -d' ' -f1-2), $(df -T "$work" | awk 'NR==2 {print $2}') on $(df "$work" | awk 'NR==2 {print $1}'), binaries copied at commit $commit"
