#!/usr/bin/env bash
# The one test command: formatting, lints, and every test of the workspace.
# Installs what the tests need that a fresh machine lacks; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is not installed; install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi
# rustfmt and clippy ship as rustup components; add them when missing.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      step "installing the $component component"
      rustup component add "$component"
    else
      echo "scripts/test.sh: cargo $component is missing and rustup is not available to install it" >&2
      exit 1
    fi
  fi
done

if [ ! -d ../shared/spec ]; then
  echo "note: ../shared/spec is not beside this checkout: the external-suite tests will print 'skipping' and pass"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked
