#!/usr/bin/env bash
# Installs what is missing, then runs every check and test. Ends with the test runner's summary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A test run builds each crate once: incremental caches would only fill the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy -- -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings

say "tests"
# The Python checks (boto3, PySpark) use `assert`; -O would strip them.
unset PYTHONOPTIMIZE
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast
else
  exec cargo test --workspace --no-fail-fast
fi
