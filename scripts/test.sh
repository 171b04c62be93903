#!/usr/bin/env bash
# The one test command: formatting, lints, and every test of the workspace.
# Installs what the tests need that a fresh machine lacks; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=scripts/install.sh
source scripts/install.sh

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

# A clean build of the workspace and its tests takes about 8 GB under target/. CI builds
# once, so incremental compilation's caches (as large again) only cost disk there.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
free_kb="$(df -Pk . 2>/dev/null | awk 'NR==2 {print $4}')"
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((12 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kb / 1024)) MB free here; a clean build and test run needs about 12 GB (cargo fails with 'No space left on device' below that)" >&2
fi

if [ ! -d ../shared/spec ]; then
  echo "note: ../shared/spec is not beside this checkout: the external-suite tests will print 'skipping' and pass"
fi

install_moto

# The Node.js producer example (examples/producers/node), run by tests/tests/producers.rs:
# Node 20 or newer, and the example's packages exactly as its package-lock.json says,
# installed again only when that lock changes.
NODE_EXAMPLE=examples/producers/node
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/test.sh: node or npm is missing; the producer example test needs Node.js 20 or newer (https://nodejs.org, or your package manager's nodejs and npm)" >&2
  exit 1
fi
node_major="$(node --version | sed 's/^v//; s/[.].*//')"
if [ "$node_major" -lt 20 ]; then
  echo "scripts/test.sh: node $(node --version) is too old; the AWS SDK for JavaScript v3 needs Node.js 20 or newer" >&2
  exit 1
fi
node_lock="$(lock_sum "$NODE_EXAMPLE/package-lock.json")"
if [ "$(cat "$NODE_EXAMPLE/node_modules/.herald-lock-sha256" 2>/dev/null)" != "$node_lock" ]; then
  step "installing the Node.js producer example's packages (npm ci)"
  npm ci --prefix "$NODE_EXAMPLE" --no-audit --no-fund
  echo "$node_lock" >"$NODE_EXAMPLE/node_modules/.herald-lock-sha256"
fi

install_handlebars_reference

# The `herald preview` browser test (cli/tests/preview_browser.rs) drives Debian's headless
# Chromium through chromedriver: both come from the distribution's packages when missing,
# never as a downloaded browser build.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  as_root=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ ${#as_root[@]} -gt 0 ]; }; then
    step "installing chromium and chromium-driver (apt-get)"
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver
  else
    echo "scripts/test.sh: chromium or chromedriver is missing; the preview browser test needs Debian's chromium and chromium-driver packages (as root: apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi

# The infrastructure lint: scripts/lint_infra.py translates infra/template.yaml to plain
# CloudFormation (aws-sam-translator, offline) and runs cfn-lint and checkov on both.
# Its own venv: these three agree on boto3, but aws-sam-cli (not needed here) pins one
# that checkov's conflicts with. Pinned; installed only when missing or wrong.
CFN_LINT_VERSION=1.58.0
SAM_TRANSLATOR_VERSION=1.115.0
CHECKOV_VERSION=3.3.30
iac_installed() {
  local freeze
  freeze="$(.venv-iac/bin/pip freeze 2>/dev/null)" || return 1
  grep -qx "cfn-lint==$CFN_LINT_VERSION" <<<"$freeze" \
    && grep -qx "aws-sam-translator==$SAM_TRANSLATOR_VERSION" <<<"$freeze" \
    && grep -qx "checkov==$CHECKOV_VERSION" <<<"$freeze"
}
if ! iac_installed; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "scripts/test.sh: python3 is missing; the infrastructure lint needs it (install python3 with venv support)" >&2
    exit 1
  fi
  step "installing cfn-lint, aws-sam-translator and checkov into .venv-iac"
  [ -x .venv-iac/bin/pip ] || python3 -m venv .venv-iac
  .venv-iac/bin/pip install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" "checkov==$CHECKOV_VERSION"
fi

step "infrastructure lint (SAM translate, cfn-lint, checkov)"
.venv-iac/bin/python scripts/lint_infra.py infra/template.yaml

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The shipped templates, checked as a template author's CI would: every template
# compiled and rendered against its fixtures in every locale it declares.
step "herald templates check templates"
cargo run -q -p herald-cli --locked -- templates check templates

step "cargo test"
cargo test --workspace --locked
