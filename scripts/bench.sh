#!/usr/bin/env bash
# Speed and size figures: criterion benchmarks, each function's release binary size
# and its cold start (process start to first /next against the emulator).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p herald-e2e --example cold_start
# One package per build: built together, the core's features would unify and each
# binary would be measured with the other's adapters compiled in.
for function in herald-email herald-sms herald-push; do
  echo "==> release build of $function"
  cargo build --release -p "$function"
  bin=target/release/$function
  printf 'release binary %s: %s bytes (%s)\n' "$bin" "$(stat -c %s "$bin")" "$(du -h "$bin" | cut -f1)"
  echo "==> cold start of $function"
  target/release/examples/cold_start "$bin" 30
done

echo "==> criterion benchmarks"
cargo bench -p herald --bench pipeline
