#!/usr/bin/env bash
# herald beside its references, measured in one run, printed as one table (metric,
# herald, reference, ratio, target): rendering against handlebars.js (Node, the pinned
# npm package in tests/js), the full email, the pipeline's CPU per message, batches
# against a provider answering in 50 ms, cold starts against a bare lambda_runtime
# function built with the same profile, and, end to end on moto through the recording
# proxy, AWS requests and DynamoDB write units per sent message, peak memory and binary
# sizes; then the cost per million marketing emails at list prices.
#
# usage: scripts/bench.sh [cold-start runs, default 30]
# The table is also written to target/bench/table.md, the raw figures to
# target/bench/results.jsonl. Never run by scripts/test.sh (its clippy builds this code).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"

step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=scripts/install.sh
source scripts/install.sh

for tool in cargo node npm python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "scripts/bench.sh: $tool is missing (see README.md, Performance)" >&2
    exit 1
  fi
done
install_moto
install_handlebars_reference

# Release builds, one package per build: built together, the core's features would
# unify and each binary would be measured with the others' adapters compiled in.
for package in herald-email herald-sms herald-push; do
  step "release build of $package"
  cargo build --release --locked -p "$package"
done
step "release build of the bench programs and the bare lambda_runtime reference"
cargo build --release --locked -p herald-e2e --example bare_runtime --example bench_e2e
cargo build --release --locked -p herald --example bench_inprocess

mkdir -p target/bench
results=target/bench/results.jsonl
step "in process: rendering beside handlebars.js $(node --version), full email, pipeline, batches"
target/release/examples/bench_inprocess "$PWD" "$(command -v node)" tests/js/bench.js >"$results"
step "deployed on moto: cold starts ($runs each), AWS requests, write units, memory"
target/release/examples/bench_e2e target/release/examples/bare_runtime \
  target/release/herald-email target/release/herald-sms target/release/herald-push "$runs" >>"$results"

cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
machine="$(nproc) cores${cpu:+ ($cpu)}, $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}'), $(uname -sm), $(date -u +%Y-%m-%d)"
step "results"
python3 scripts/bench_table.py "$results" "$machine" | tee target/bench/table.md
