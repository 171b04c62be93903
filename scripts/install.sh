# Installs shared by scripts/test.sh and scripts/bench.sh; sourced, with `step` defined.
# Each installs only what is missing or not at its pinned version.

lock_sum() { { sha256sum "$1" 2>/dev/null || shasum -a 256 "$1"; } | cut -d' ' -f1; }

install_moto() {
  # The end-to-end tests run moto's standalone server as a local AWS (SES v2, SQS, SNS,
  # DynamoDB, Secrets Manager).
  # Pinned: its quirks are documented in tests/src/moto.rs. boto3 comes with moto; it is
  # pinned too because the Python producer example (examples/producers/python) runs on it
  # in tests/tests/producers.rs. Install only when missing or wrong.
  local MOTO_VERSION=5.2.5 BOTO3_VERSION=1.44.8
  venv_version() { .venv/bin/pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
  if [ ! -x .venv/bin/moto_server ] || [ "$(venv_version moto)" != "$MOTO_VERSION" ] \
    || [ "$(venv_version boto3)" != "$BOTO3_VERSION" ]; then
    if ! command -v python3 >/dev/null 2>&1; then
      echo "$0: python3 is missing; the end-to-end tests and benchmarks need it to run moto (install python3 with venv support)" >&2
      exit 1
    fi
    step "installing moto[server]==$MOTO_VERSION and boto3==$BOTO3_VERSION into .venv"
    [ -x .venv/bin/pip ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION"
  fi
}

install_handlebars_reference() {
  # handlebars.js, the reference implementation of the template language: the parity test
  # (shared/tests/handlebars_js_parity.rs) renders its corpus with it through tests/js/render.js,
  # and scripts/bench.sh times it beside herald (tests/js/bench.js). Needs node and npm.
  # Pinned to the version in tests/js/package-lock.json; installed again only when that lock changes.
  local HBS_REFERENCE=tests/js hbs_lock
  hbs_lock="$(lock_sum "$HBS_REFERENCE/package-lock.json")"
  if [ "$(cat "$HBS_REFERENCE/node_modules/.herald-lock-sha256" 2>/dev/null)" != "$hbs_lock" ]; then
    step "installing handlebars.js, the template reference (npm ci in $HBS_REFERENCE)"
    npm ci --prefix "$HBS_REFERENCE" --no-audit --no-fund
    echo "$hbs_lock" >"$HBS_REFERENCE/node_modules/.herald-lock-sha256"
  fi
}
