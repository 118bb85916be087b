#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and prints, per target, the
# executions, executions per second, corpus size and crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#   FUZZ_TARGETS="sigv4 quantity" scripts/fuzz.sh 300     (a subset)
#
# Needs the nightly toolchain (installed with `rustup` if missing) and cargo-fuzz (installed,
# pinned, if missing). Each target starts from its committed seeds (fuzz/seeds/<target>/)
# plus whatever earlier runs kept in fuzz/corpus/<target>/ (git-ignored); crashes land in
# fuzz/artifacts/<target>/ (git-ignored). Exits 1 if any target crashed (or timed out, or
# ran out of memory), 2 if the tooling could not be set up or built.
#
# Reproduce a crash:   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# Minimise it:         cargo +nightly fuzz tmin <target> fuzz/artifacts/<target>/<file>
# See docs/reliability.md ("Fuzzing").
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
CARGO_FUZZ_VERSION="0.13.2"
case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# The sanitizer build has its own target directory: it shares no artefacts with the main
# build (other flags, nightly), and must not replace them.
export CARGO_TARGET_DIR="$ROOT/fuzz/target"

# --- tooling -------------------------------------------------------------------------------
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain (cargo-fuzz needs -Z flags)"
  rustup toolchain install nightly --profile minimal || exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" || exit 2
fi
echo "== $(cargo +nightly --version); $(cargo +nightly fuzz --version)"

# The emr_requests and s3_xml targets run against a real store that fsyncs each commit:
# keep it on a tmpfs when there is one.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  FUZZ_TMP="$(mktemp -d /dev/shm/sparkyard-fuzz.XXXXXX)"
else
  FUZZ_TMP="$(mktemp -d)"
fi
LOGS="$FUZZ_TMP/logs"
mkdir -p "$LOGS"
trap 'rm -rf "$FUZZ_TMP"' EXIT

# --- build ---------------------------------------------------------------------------------
# Release with debug assertions and AddressSanitizer (cargo-fuzz's defaults): overflow
# checks stay on, so an arithmetic overflow is a crash too.
echo "== building the fuzz targets"
build_started=$(date +%s)
if ! cargo +nightly fuzz build >"$LOGS/build.log" 2>&1; then
  tail -n 60 "$LOGS/build.log" >&2
  echo "fuzz build failed" >&2
  exit 2
fi
echo "   built in $(( $(date +%s) - build_started ))s"

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# --- run -----------------------------------------------------------------------------------
results=()
failed=0
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  seeds="fuzz/seeds/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  marker="$FUZZ_TMP/$target.start"
  touch "$marker"
  log="$LOGS/$target.log"
  echo "== $target: ${SECONDS_PER_TARGET}s"
  status=0
  # New inputs go to the first corpus directory; the seeds directory is only read.
  TMPDIR="$FUZZ_TMP" cargo +nightly fuzz run "$target" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=30 \
    -rss_limit_mb=4096 \
    -print_final_stats=1 \
    >"$log" 2>&1 || status=$?

  # Figures from libFuzzer's own report.
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
  last_status=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  if [ -n "$done_line" ]; then
    execs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")
    secs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")
  else
    execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [ -z "$execs" ] && execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last_status")
    secs=$(grep -oE '^stat::[a-z_]*time[a-z_]*: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
    [ -z "$secs" ] && secs="$SECONDS_PER_TARGET"
  fi
  execs=${execs:-0}
  if [ "${secs:-0}" -gt 0 ]; then
    rate=$(( execs / secs ))
  else
    rate=$execs
  fi
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last_status" | sed 's/corp: //' || true)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last_status" | sed 's/cov: //' || true)
  saved=$(find "$corpus" -type f | wc -l)

  # Crashes: libFuzzer's exit status and anything it wrote to the artifacts this run.
  mapfile -t found < <(find "$artifacts" -type f -newer "$marker" | sort)
  if [ "$status" -ne 0 ] || [ "${#found[@]}" -gt 0 ]; then
    failed=1
    crash="${found[*]:-exit status $status (see below)}"
    echo "!! $target crashed: $crash"
    grep -m1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" -A 4 "$log" || tail -n 30 "$log"
  else
    crash=0
  fi
  results+=("$target|$secs|$execs|$rate|${corp:-?}|${cov:-?}|$saved|$crash")
done

# --- report --------------------------------------------------------------------------------
echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${SECONDS_PER_TARGET}s per target)"
printf '| %-15s | %7s | %11s | %7s | %12s | %6s | %6s | %s\n' \
  target seconds executions 'exec/s' 'corpus' cov saved crashes
printf '|%s|\n' "-----------------|---------|-------------|---------|--------------|--------|--------|--------"
for row in "${results[@]}"; do
  IFS='|' read -r t s e r c v n x <<<"$row"
  printf '| %-15s | %7s | %11s | %7s | %12s | %6s | %6s | %s\n' "$t" "$s" "$e" "$r" "$c" "$v" "$n" "$x"
done
echo "(corpus: units/bytes libFuzzer held at the end, seeds included; saved: files in fuzz/corpus/<target>)"
cd "$ROOT"
exit "$failed"
