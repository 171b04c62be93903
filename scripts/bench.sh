#!/usr/bin/env bash
# Speed and size figures: criterion benchmarks, the email function's release binary
# size and its cold start (process start to first /next against the emulator).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> release build of the email function"
cargo build --release -p herald-email
cargo build --release -p herald-e2e --example cold_start
bin=target/release/herald-email
printf 'release binary %s: %s bytes (%s)\n' "$bin" "$(stat -c %s "$bin")" "$(du -h "$bin" | cut -f1)"

echo "==> cold start"
target/release/examples/cold_start "$bin" 30

echo "==> criterion benchmarks"
cargo bench -p herald --bench pipeline
