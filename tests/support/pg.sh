#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests (TESTING.md).
#
#   pg.sh start DIR   initdb + start a server whose data and unix socket live in DIR, listening
#                     on a free loopback port with trust auth; writes the superuser's libpq URL
#                     to DIR/url. Does nothing when that server is already up.
#   pg.sh stop DIR    stops it and removes DIR.
#
# initdb refuses to run as root, so as root the server runs as the `postgres` system user.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
START_DEADLINE_S=${PG_START_DEADLINE_S:-60}

die() { echo "pg.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: pg.sh start|stop DIR"
cmd=$1
dir=$2
[[ -x $PG_BIN/pg_ctl ]] || die "PostgreSQL 15 is not installed ($PG_BIN/pg_ctl missing; apt-get install postgresql)"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user (apt-get install postgresql)"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# The cluster lives in DIR/data unless the server user cannot reach DIR (e.g. DIR under a
# root-only home); then it lives in a temp dir whose path is recorded in DIR/datadir.
data_dir() {
  if [[ -f $dir/datadir ]]; then cat "$dir/datadir"; else echo "$dir/data"; fi
}

pg_ctl_q() { as_pg "$PG_BIN/pg_ctl" -D "$(data_dir)" "$@"; }

is_running() {
  [[ -f $(data_dir)/PG_VERSION ]] && pg_ctl_q status >/dev/null 2>&1
}

is_ready() {
  [[ -f $dir/port ]] && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

show_log_and_die() {
  echo "---- $dir/server.log ----" >&2
  cat "$dir/server.log" >&2 2>/dev/null || echo "(no server log)" >&2
  echo "-------------------------" >&2
  die "$*"
}

# The server gave up (bad option, port taken). pg_isready's own probes while the server
# starts log "FATAL: the database system is starting up": that one is not giving up.
gave_up() {
  grep -E 'FATAL|PANIC|database system is shut down' "$dir/server.log" | grep -qv 'the database system is starting up'
}

start() {
  if is_running && is_ready && [[ -s $dir/url ]]; then
    echo "pg.sh: already running: $(cat "$dir/url")"
    return 0
  fi
  # Anything left over (a crashed server, a half-made cluster) is thrown away.
  if is_running; then pg_ctl_q stop -m immediate -w >/dev/null 2>&1 || true; fi
  local old_data
  old_data=$(data_dir)
  [[ $old_data != "$dir/data" ]] && rm -rf "$(dirname "$old_data")"
  find "$dir" -mindepth 1 -delete

  local data="$dir/data"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir"
    if ! as_pg test -w "$dir" -a -x "$dir"; then
      data=$(mktemp -d /tmp/neurod-pg.XXXXXX)
      chown postgres:postgres "$data"
      data="$data/data"
      echo "$data" >"$dir/datadir"
    fi
  fi
  # The log and the socket are written by the server user.
  touch "$dir/server.log"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir/server.log"
  local sock_dir
  sock_dir=$(dirname "$data")

  as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >>"$dir/server.log" 2>&1 || show_log_and_die "initdb failed"

  # A free port can be taken between probing and binding; try a few.
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    echo "$port" >"$dir/port"
    if as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/server.log" -W \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$sock_dir' \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null 9>&-; then
      local deadline=$((SECONDS + START_DEADLINE_S))
      while ((SECONDS < deadline)); do
        if is_ready; then
          echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url"
          echo "pg.sh: started $(cat "$dir/url") (data $data)"
          return 0
        fi
        gave_up && break  # no point waiting
        sleep 0.1
      done
      if ! gave_up; then
        pg_ctl_q stop -m immediate -w >/dev/null 2>&1 || true
        show_log_and_die "server not ready after ${START_DEADLINE_S}s"
      fi
    fi
    # Retry only a lost race for the port.
    grep -q "could not bind\|Address already in use" "$dir/server.log" || break
    echo "pg.sh: port $port was taken, retrying (attempt $attempt)" >&2
  done
  show_log_and_die "server did not start"
}

stop() {
  if is_running; then
    pg_ctl_q stop -m fast -w >/dev/null || pg_ctl_q stop -m immediate -w >/dev/null || true
  fi
  local data
  data=$(data_dir)
  [[ $data != "$dir/data" ]] && rm -rf "$(dirname "$data")"
  rm -rf "$dir"
  echo "pg.sh: stopped"
}

# One start/stop at a time per DIR.
exec 9>"$dir.lock"
flock 9

case $cmd in
  start) start ;;
  stop) stop; rm -f "$dir.lock" ;;
  *) die "usage: pg.sh start|stop DIR" ;;
esac
