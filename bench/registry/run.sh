#!/usr/bin/env bash
# Registry benchmarks (issue 6, part 7): neurod's OCI Distribution registry (/v2/ on neurod's
# listener) side by side with Debian's docker-registry (the CNCF distribution registry 2.8)
# in the same run, both on loopback, their stores in one temp dir on the same file system.
#
#  (a) An image of SIZE_MIB (default 1 GiB) in LAYERS (default 8) uncompressed layers
#      (`application/vnd.oci.image.layer.v1.tar`, each a tar of one file of /dev/urandom bytes:
#      incompressible), built offline as an OCI image layout by oci.py. Pushed with
#      `skopeo copy --preserve-digests oci:LAYOUT:1 docker://HOST/PROJECT/img-N:1` and pulled
#      back with `skopeo copy --preserve-digests docker://… oci:FRESH_DIR:1`. --preserve-digests
#      keeps skopeo from gzipping the layers on the way (it compresses uncompressed layers for
#      a registry by default, which would measure gzip, not the registries).
#      Every push uploads every byte: each repetition pushes to a new repository (img-N);
#      every skopeo runs in its own mount namespace with an empty tmpfs over
#      /var/lib/containers/cache, so its blob-info cache knows of no copy to mount from; the
#      previous repetition's manifest and blobs are DELETEd through the API and each
#      registry's garbage collection removes the blob files just before that registry's push
#      (`docker-registry garbage-collect` with the registry stopped and started again, as its
#      documentation requires; `neurod registry gc --grace 0s` beside the running neurod);
#      and a push whose skopeo output says "skipped" fails the run. Loopback bytes counted during
#      each push are printed as well. REPS repetitions (default 3), the order alternating;
#      median MB/s (10^6 bytes of the image's blobs and manifest / the skopeo process's wall
#      time) and the ratio neurod/docker-registry. Target ≥ 1.0 both ways. docker-registry
#      does not fsync what it stores; neurod does (temp file, fsync, rename), so a column adds
#      an fsync of docker-registry's new blob files (`sync FILE…`) to its push time. The CPU
#      seconds of each server process and of each skopeo (/usr/bin/time) are reported too.
#      Every pull is checked: the pulled manifest digest is the source's and every blob
#      hashes to its digest (oci.py verify). A reference row GETs the same blobs with
#      `curl -Z --parallel-max 6` to /dev/null: the servers' side of a pull without the
#      client's hashing and writing (skopeo's pull is bound by its own CPU on 2 cores).
#  (b) PULLS (default 100) concurrent pulls of a SMALL_MIB (default 10 MiB, 2 layers) image,
#      all started at once, each one curl process on one kept-alive connection GETting the
#      manifest, then the config, then the layers, into files (curl, not skopeo: 100 skopeo
#      processes on 2 cores would measure skopeo). Total wall time, pulls/s, per-pull p50/max,
#      median of REPS, the order alternating. Every file fetched is checked against its
#      digest afterwards (oci.py verify-curl).
#
#   bench/registry/run.sh [reps=3] [size_mib=1024] [pulls=100]
#
# docker-registry: filesystem storage, no auth (the registry is on loopback only), Debian's
# in-memory blob-descriptor cache, deletes enabled, access log on (info level). neurod:
# SQLite, defaults otherwise (access log on); every request carries Basic auth with the
# bootstrap admin token as password (skopeo --creds admin:TOKEN, curl -u). When neurod's /v2/
# answers 404 (no registry module in this build) its side is skipped with a message and the
# tables show docker-registry alone; NEUROD=0 skips it without starting neurod.
# Needs: skopeo, docker-registry, curl, GNU time (scripts/setup --bench), python3, unshare
# and mount (root).
# neurod from NEUROD_BIN, else built into build-bench/ by scripts/build (RelWithDebInfo),
# copied first so a rebuild during the run does not disturb it. Everything lives in one temp
# dir under TMPDIR (default /tmp), removed at the end unless KEEP=1. About 1.5 minutes on a
# 2-core VM with the defaults (REPS=5: 2.5). Prints Markdown tables for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
REPS=${1:-3}
SIZE_MIB=${2:-1024}
PULLS=${3:-100}
LAYERS=${LAYERS:-8}
SMALL_MIB=${SMALL_MIB:-10}
PY=/usr/bin/python3
OCI="$PY $root/bench/registry/oci.py"
export NO_COLOR=1

for tool in skopeo docker-registry curl unshare /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: scripts/setup --bench" >&2; exit 1; }
done
if [[ ${NEUROD:-1} != 0 && -z ${NEUROD_BIN:-} ]]; then
  NEUROD_BUILD_DIR=build-bench scripts/build neurod >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/nr-XXXXXX")
[[ ${NEUROD:-1} == 0 ]] || cp "${NEUROD_BIN:-build-bench/src/app/neurod}" "$work/neurod"
commit="$(git rev-parse --short HEAD)$([[ -z $(git status --porcelain --untracked-files=no) ]] || echo ' with uncommitted changes in the tree')"
npid='' dpid=''
cleanup() {
  [[ -n $npid ]] && { kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null; } || true
  [[ -n $dpid ]] && { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; } || true
  if [[ ${KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rounded() { $PY -c 'import sys; print(" ".join(format(float(x), sys.argv[1]) for x in sys.argv[2:]))' "$@"; }
median() { $PY -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
fmt() { $PY -c 'import sys; print(format(float(sys.argv[2]), sys.argv[1]))' "$@"; }
ratio() { $PY -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$@"; }
json() {  # FILE KEY: a value of the JSON object in FILE (a list printed space-separated)
  $PY -c 'import json,sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(" ".join(v) if isinstance(v, list) else v)' "$@"
}
lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }  # user+system s
client_cpu() { awk '{print $1 + $2}' "$1.cpu"; }  # of a skopeo, from /usr/bin/time

# --- the images, offline --------------------------------------------------------------------
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== building the images in $work (load $load0)" >&2
$OCI build "$work/big" "$SIZE_MIB" "$LAYERS" >"$work/big.json"
$OCI build "$work/small" "$SMALL_MIB" 2 >"$work/small.json"
big_bytes=$(json "$work/big.json" bytes)
small_bytes=$(json "$work/small.json" bytes)
cat "$work"/big/blobs/sha256/* "$work"/small/blobs/sha256/* >/dev/null  # in the page cache

# --- docker-registry ------------------------------------------------------------------------
dport=$(free_port)
cat >"$work/dreg.yml" <<YAML
version: 0.1
log:
  level: info
  fields: {service: registry}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $work/dreg}
  delete: {enabled: true}
  maintenance:
    uploadpurging: {enabled: false}
http:
  addr: 127.0.0.1:$dport
YAML
start_dreg() {
  docker-registry serve "$work/dreg.yml" >>"$work/dreg.log" 2>&1 &
  dpid=$!
  for _ in $(seq 1 500); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$dhost/v2/") == 200 ]] && return
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.02
  done
  cat "$work/dreg.log" >&2
  echo "docker-registry did not start" >&2
  exit 1
}
dhost=127.0.0.1:$dport
start_dreg

# --- neurod (SQLite, defaults otherwise) ----------------------------------------------------
servers=(dreg)
neurod_note=
nhost='' TOKEN='' project=admin
if [[ ${NEUROD:-1} == 0 ]]; then
  neurod_note="neurod was not run (NEUROD=0)"
else
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
  project=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$url/api/v1/auth/whoami" | $PY -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>/dev/null || echo admin)
  nhost=${url#http://}
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "$project:$TOKEN" "$url/v2/")
  if [[ $code == 200 ]]; then
    servers=(neurod dreg)
  else
    neurod_note="neurod at $url answers $code to GET /v2/ (with Basic auth)$([[ $code == 404 ]] && echo ": this build has no registry"); neurod's side is skipped"
    echo "!! $neurod_note" >&2
  fi
fi
has() { [[ " ${servers[*]} " == *" $1 "* ]]; }
host_of() { if [[ $1 == neurod ]]; then echo "$nhost"; else echo "$dhost"; fi; }
creds_of() { [[ $1 == neurod ]] && echo "$project:$TOKEN" || true; }

# skopeo with an empty blob-info cache of its own (a tmpfs over the system cache dir in a
# private mount namespace), an empty auth file and no signature policy: it knows nothing
# from earlier runs, so it cannot mount blobs from another repository instead of uploading.
mkdir -p /var/lib/containers/cache
echo '{}' >"$work/auth.json"
fresh_skopeo() {  # LOG ARGS...
  local log=$1
  shift
  REGISTRY_AUTH_FILE=$work/auth.json unshare -m --propagation private sh -c \
    'mount -t tmpfs -o size=16m none /var/lib/containers/cache && exec /usr/bin/time -f "%U %S" -o "$0" skopeo --insecure-policy "$@"' \
    "$log.cpu" "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "skopeo $* failed" >&2; exit 1; }
}
push() {  # SERVER LAYOUT REPO LOG
  local c=()
  [[ $1 == neurod ]] && c=(--dest-creds "$(creds_of "$1")")
  fresh_skopeo "$4" copy --preserve-digests --dest-tls-verify=false "${c[@]}" "oci:$2:1" "docker://$(host_of "$1")/$3:1"
  if grep -q skipped "$4"; then cat "$4" >&2; echo "skopeo skipped blobs pushing to $1 $3: nothing was measured" >&2; exit 1; fi
}
pull() {  # SERVER REPO DIR LOG
  local c=()
  [[ $1 == neurod ]] && c=(--src-creds "$(creds_of "$1")")
  fresh_skopeo "$4" copy --preserve-digests --src-tls-verify=false "${c[@]}" "docker://$(host_of "$1")/$2:1" "oci:$3:1"
}

echo "docker-registry http://$dhost (store $work/dreg)$(has neurod && echo ", neurod $url (data $work/data), project $project")" >&2

# --- deleting a repository and collecting garbage --------------------------------------------
delete_repo() {  # SERVER REPO IMAGE_JSON: DELETE the manifest, then each blob (not timed)
  local s=$1 repo=$2 j=$3 base d a=()
  base="http://$(host_of "$s")/v2/$repo"
  [[ $s == neurod ]] && a=(-u "$project:$TOKEN")
  echo "DELETE $repo: manifest $(curl -s -o /dev/null -w '%{http_code}' "${a[@]}" -X DELETE "$base/manifests/$(json "$j" manifest)")," \
    "blobs$(for d in $(json "$j" config) $(json "$j" layers); do echo -n " $(curl -s -o /dev/null -w '%{http_code}' "${a[@]}" -X DELETE "$base/blobs/$d")"; done)" >>"$work/delete-$s.log"
}
neurod_gc=–
collect() {  # SERVER: garbage collection, so that the next push writes every blob file anew
  if [[ $1 == dreg ]]; then
    # As its documentation says: with the registry stopped. A running one keeps the deleted
    # blobs in its in-memory descriptor cache and would link a re-pushed manifest to a blob
    # file that is gone.
    kill "$dpid"
    wait "$dpid" 2>/dev/null || true
    docker-registry garbage-collect "$work/dreg.yml" >>"$work/dreg-gc.log" 2>&1
    start_dreg
  else
    # neurod's offline `registry gc` (safe while neurod runs: the store's lock), with no grace
    # period, so the blobs that the DELETEs unlinked go now.
    if "$work/neurod" --config "$work/neurod.yaml" registry gc --grace 0s >>"$work/neurod-gc.log" 2>&1; then
      neurod_gc=yes
    else
      neurod_gc="no (\`neurod registry gc\` failed: $(tail -1 "$work/neurod-gc.log"))"
      echo "!! neurod registry gc failed: the next push may find blob files already there" >&2
    fi
  fi
}
# The data files of the big image's blobs in docker-registry's store (listed once, so that
# listing them is not part of the timed "+ fsync").
dreg_files=()
for d in $(json "$work/big.json" config) $(json "$work/big.json" layers); do
  d=${d#sha256:}
  dreg_files+=("$work/dreg/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data")
done

declare -A col
add() { col[$1]+=" $2"; }
mbps() { $PY -c 'import sys; print("%.1f" % (float(sys.argv[1]) / float(sys.argv[2]) / 1e6))' "$1" "$2"; }
secs() { $PY -c "print($2-$1)"; }

# --- warm-up (not counted): the small image, pushed and pulled once through each server -------
for s in "${servers[@]}"; do
  push "$s" "$work/small" "$project/small" "$work/skopeo-small-push-$s.log"
  pull "$s" "$project/small" "$work/small-pull-$s" "$work/skopeo-small-pull-$s.log"
  $OCI verify "$work/small-pull-$s" "$work/small"
  rm -rf "$work/small-pull-$s"
done

# ------------------------------------------------------------------------------------------
# (a) push and pull of the big image

echo "== (a) $SIZE_MIB MiB in $LAYERS layers, $REPS repetitions" >&2
fresh_push() {  # SERVER REP: the previous repetition's repository deleted, garbage collected
  if (($2 > 1)); then
    delete_repo "$1" "$project/img-$(($2 - 1))" "$work/big.json"
    collect "$1"
  fi
  sync
}
pid_of() { if [[ $1 == neurod ]]; then echo "$npid"; else echo "$dpid"; fi; }
timed_push() {  # SERVER REP
  local t0 t1 t2 l0 l1 c0 c1 log=$work/skopeo-push-$1-$2.log
  l0=$(lo_bytes)
  c0=$(cpu_of "$(pid_of "$1")")
  t0=$(now)
  push "$1" "$work/big" "$project/img-$2" "$log"
  t1=$(now)
  c1=$(cpu_of "$(pid_of "$1")")
  l1=$(lo_bytes)
  add "${1}_push_cpu" "$($PY -c "print($c1-$c0)")"
  add "${1}_push_ccpu" "$(client_cpu "$log")"
  add "${1}_push" "$(mbps "$big_bytes" "$(secs "$t0" "$t1")")"
  add "${1}_wire" "$($PY -c "print('%.0f' % (($l1-$l0)/1e6))")"
  if [[ $1 == dreg ]]; then
    sync "${dreg_files[@]}"  # fsync(2) of each new blob file
    t2=$(now)
    add dreg_push_sync "$(mbps "$big_bytes" "$(secs "$t0" "$t2")")"
  fi
}
timed_pull() {  # SERVER REP
  local t0 t1 c0 c1 dir=$work/pull-$1 log=$work/skopeo-pull-$1-$2.log
  rm -rf "$dir"  # its own previous pull, just before (see bench/storage/run.sh on why)
  sync
  c0=$(cpu_of "$(pid_of "$1")")
  t0=$(now)
  pull "$1" "$project/img-$2" "$dir" "$log"
  t1=$(now)
  c1=$(cpu_of "$(pid_of "$1")")
  add "${1}_pull_cpu" "$($PY -c "print($c1-$c0)")"
  add "${1}_pull_ccpu" "$(client_cpu "$log")"
  add "${1}_pull" "$(mbps "$big_bytes" "$(secs "$t0" "$t1")")"
  $OCI verify "$dir" "$work/big"
}
raw_get() {  # SERVER REP: the big image's blobs GET by curl -Z, 6 at once as skopeo does, to
  # /dev/null: the server's side of a pull without skopeo's hashing and writing
  local s=$1 t0 t1 base a=() b=() d
  base="http://$(host_of "$s")/v2/$project/img-$2/blobs"
  [[ $s == neurod ]] && a=(-u "$project:$TOKEN")
  for d in $(json "$work/big.json" config) $(json "$work/big.json" layers); do b+=(-o /dev/null "$base/$d"); done
  t0=$(now)
  curl -f --no-progress-meter "${a[@]}" -Z --parallel-max 6 "${b[@]}"
  t1=$(now)
  add "${s}_get" "$(mbps "$big_bytes" "$(secs "$t0" "$t1")")"
}
last() { [[ -n ${col[$1]:-} ]] && echo "${col[$1]##* }" || echo -; }
lastf() { [[ -n ${col[$1]:-} ]] && fmt .2f "${col[$1]##* }" || echo -; }
for i in $(seq 1 "$REPS"); do
  if ((i % 2)); then order=("${servers[@]}"); else order=(); for ((k = ${#servers[@]} - 1; k >= 0; k--)); do order+=("${servers[$k]}"); done; fi
  for s in "${order[@]}"; do fresh_push "$s" "$i"; timed_push "$s" "$i"; done
  for s in "${order[@]}"; do timed_pull "$s" "$i"; done
  for s in "${order[@]}"; do raw_get "$s" "$i"; done
  echo "   rep $i (${order[*]}): push MB/s neurod $(last neurod_push), docker-registry $(last dreg_push) (+fsync $(last dreg_push_sync));" \
    "pull MB/s neurod $(last neurod_pull), docker-registry $(last dreg_pull) (curl -Z GETs $(last neurod_get), $(last dreg_get)); loopback MB during push neurod $(last neurod_wire), docker-registry $(last dreg_wire)" >&2
done
rm -rf "$work"/pull-*

# ------------------------------------------------------------------------------------------
# (b) PULLS concurrent pulls of the small image with curl

echo "== (b) $PULLS concurrent pulls of the $SMALL_MIB MiB image, $REPS repetitions" >&2
small_manifest=$(json "$work/small.json" manifest)
small_blobs=($(json "$work/small.json" config) $(json "$work/small.json" layers))
one_pull() {  # SERVER DIR N: one curl, one connection: the manifest, then the config and the
  # layers in turn (--next keeps the connection); writes its seconds to DIR.t/N
  local s=$1 d=$2/$3 t0 base a=() b=()
  base="http://$(host_of "$s")/v2/$project/small"
  [[ $s == neurod ]] && a=(-u "$project:$TOKEN")
  for x in "${small_blobs[@]}"; do b+=(--next -fsS "${a[@]}" -o "$d/$x" "$base/blobs/$x"); done
  t0=${EPOCHREALTIME/./}
  mkdir -p "$d"
  if curl -fsS "${a[@]}" -H "Accept: application/vnd.oci.image.manifest.v1+json" -o "$d/manifest" "$base/manifests/1" "${b[@]}"; then
    echo "$(((${EPOCHREALTIME/./} - t0) / 1000))e-3" >"$2.t/$3"
  else
    echo "$s pull $3 failed" >"$2.t/$3.failed"
  fi
}
many_pulls() {  # SERVER REP
  local s=$1 dir=$work/many-$1 t0 t1 c0 c1 pids=() p
  rm -rf "$dir" "$dir.t"
  mkdir -p "$dir" "$dir.t"
  sync
  c0=$(cpu_of "$(pid_of "$s")")
  t0=$(now)
  for n in $(seq 1 "$PULLS"); do one_pull "$s" "$dir" "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now)
  c1=$(cpu_of "$(pid_of "$s")")
  add "${s}_many_cpu" "$($PY -c "print($c1-$c0)")"
  if compgen -G "$dir.t/*.failed" >/dev/null; then cat "$dir".t/*.failed >&2; exit 1; fi
  [[ $($OCI verify-curl "$dir" "$small_manifest") == "$PULLS" ]] || { echo "$s: not $PULLS pulls" >&2; exit 1; }
  add "${s}_many" "$(secs "$t0" "$t1")"
  add "${s}_p50" "$(median $(cat "$dir".t/*))"
  add "${s}_max" "$($PY -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' $(cat "$dir".t/*))"
}
for i in $(seq 1 "$REPS"); do
  if ((i % 2)); then order=("${servers[@]}"); else order=(); for ((k = ${#servers[@]} - 1; k >= 0; k--)); do order+=("${servers[$k]}"); done; fi
  for s in "${order[@]}"; do many_pulls "$s" "$i"; done
  echo "   rep $i (${order[*]}): $PULLS pulls, wall s: neurod $(lastf neurod_many), docker-registry $(lastf dreg_many)" >&2
done
rm -rf "$work"/many-*
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------------
declare -A med
for k in "${!col[@]}"; do med[$k]=$(median ${col[$k]}); done
m() { [[ -n ${med[$1]:-} ]] && fmt "$2" "${med[$1]}" || echo –; }
r() { [[ -n ${med[$1]:-} && -n ${med[$2]:-} ]] && ratio "${med[$1]}" "${med[$2]}" || echo –; }
runs() { [[ -n ${col[$1]:-} ]] && rounded "$2" ${col[$1]} || echo –; }
pps() { [[ -n ${med[$1]:-} ]] && $PY -c "print('%.1f' % ($PULLS/${med[$1]}))" || echo –; }
echo
[[ -z $neurod_note ]] || { echo "**$neurod_note.**"; echo; }
echo "### (a) $SIZE_MIB MiB image in $LAYERS uncompressed layers, skopeo copy, median of $REPS"
echo
echo "| direction | neurod MB/s | docker-registry MB/s | **neurod / docker-registry** | docker-registry + fsync MB/s | neurod / (docker-registry + fsync) |"
echo "|---|---|---|---|---|---|"
echo "| push (oci: → docker://) | $(m neurod_push .1f) | $(m dreg_push .1f) | **$(r neurod_push dreg_push)** | $(m dreg_push_sync .1f) | $(r neurod_push dreg_push_sync) |"
echo "| pull (docker:// → oci:) | $(m neurod_pull .1f) | $(m dreg_pull .1f) | **$(r neurod_pull dreg_pull)** | | |"
echo "| (reference) the blobs GET by curl -Z, 6 at once, to /dev/null | $(m neurod_get .1f) | $(m dreg_get .1f) | $(r neurod_get dreg_get) | | |"
echo
echo "Every run in order (MB/s): neurod push $(runs neurod_push .0f); docker-registry push $(runs dreg_push .0f); docker-registry push + fsync $(runs dreg_push_sync .0f); neurod pull $(runs neurod_pull .0f); docker-registry pull $(runs dreg_pull .0f); neurod curl -Z GETs $(runs neurod_get .0f); docker-registry curl -Z GETs $(runs dreg_get .0f). Loopback MB counted during each push: neurod $(runs neurod_wire .0f), docker-registry $(runs dreg_wire .0f) (the image is $(fmt .0f "$($PY -c "print($big_bytes/1e6)")") MB). Garbage collection between pushes: docker-registry yes, neurod ${neurod_gc}."
echo
echo "CPU seconds per copy, median (server: user+system of its process; skopeo: of the client):"
echo
echo "| copy | neurod | docker-registry | skopeo against neurod | skopeo against docker-registry |"
echo "|---|---|---|---|---|"
echo "| push | $(m neurod_push_cpu .2f) | $(m dreg_push_cpu .2f) | $(m neurod_push_ccpu .2f) | $(m dreg_push_ccpu .2f) |"
echo "| pull | $(m neurod_pull_cpu .2f) | $(m dreg_pull_cpu .2f) | $(m neurod_pull_ccpu .2f) | $(m dreg_pull_ccpu .2f) |"
echo
echo "### (b) $PULLS concurrent pulls of a $SMALL_MIB MiB image (one curl each: manifest, config, 2 layers on one connection), median of $REPS"
echo
echo "| server | wall s | pulls/s | MB/s | per-pull p50 s | per-pull max s | server CPU s | **neurod pulls/s / docker-registry's** |"
echo "|---|---|---|---|---|---|---|---|"
for s in neurod dreg; do
  name=$([[ $s == dreg ]] && echo docker-registry || echo neurod)
  mb=$([[ -n ${med[${s}_many]:-} ]] && $PY -c "print('%.0f' % ($PULLS*$small_bytes/1e6/${med[${s}_many]}))" || echo –)
  echo "| $name | $(m "${s}_many" .2f) | $(pps "${s}_many") | $mb | $(m "${s}_p50" .2f) | $(m "${s}_max" .2f) | $(m "${s}_many_cpu" .2f) | $([[ $s == dreg ]] && echo 1.00 || echo "**$(r dreg_many neurod_many)**") |"
done
echo
echo "Every run in order (wall s): neurod $(runs neurod_many .2f); docker-registry $(runs dreg_many .2f)."
echo
echo "$(nproc) cores shared by clients and servers; load average before $load0, after $load1; $(docker-registry --version | cut -d' ' -f2-), $(skopeo --version), $(curl --version | head -1 | cut -d' ' -f1-2), $(df -T "$work" | awk 'NR==2 {print $2}') on $(df "$work" | awk 'NR==2 {print $1}'), neurod binary copied at commit $commit"
