#!/usr/bin/env bash
# Runs the permission model benchmark (bench_auth.cpp) built by scripts/build; builds
# nothing. The defaults are the reference load: 10,000 principals (9,000 users and
# 1,000 project roles), 100,000 grants, 5 million warm checks on one thread, then the
# same on every core. Extra arguments go to the benchmark and override these.
#   bench/auth/run.sh [--checks N] [--threads N] ...
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${NEUROD_BUILD_DIR:-build}
bin="$BUILD_DIR/bench/neurod_bench_auth"
if [ ! -x "$bin" ]; then
  echo "run.sh: $bin not found; build it first: scripts/build neurod_bench_auth" >&2
  exit 1
fi
threads=$(nproc 2>/dev/null || echo 1)
exec "$bin" --users 9000 --roles 1000 --grants 100000 --checks 5000000 --distinct 1000000 --threads "$threads" --seed 42 "$@"
