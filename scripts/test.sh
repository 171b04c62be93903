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

# The end-to-end tests run moto's standalone server as a local AWS (SES v2, SQS, DynamoDB).
# Pinned: its quirks are documented in tests/src/moto.rs. Install only when missing or wrong.
MOTO_VERSION=5.2.5
if [ ! -x .venv/bin/moto_server ] || [ "$(.venv/bin/pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "scripts/test.sh: python3 is missing; the end-to-end tests need it to run moto (install python3 with venv support)" >&2
    exit 1
  fi
  step "installing moto[server]==$MOTO_VERSION into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked
