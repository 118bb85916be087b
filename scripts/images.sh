#!/usr/bin/env bash
# Builds sparkyard's two images and prints their tags (docs/install-on-kubernetes.md):
#   sparkyard/sparkyard:<version>  the server (images/sparkyard/Dockerfile), what the chart runs
#   sparkyard/tools:<version>      the job runner's tool image (images/tools/Dockerfile)
# <version> is the workspace version (Cargo.toml), the chart's appVersion.
#
#   scripts/images.sh                       build with docker, else buildah, else podman
#   scripts/images.sh --push REGISTRY       also tag as REGISTRY/sparkyard:<v>, REGISTRY/sparkyard/tools:<v> and push
#   scripts/images.sh --platform linux/arm64  another architecture (docker buildx / buildah)
#
# Not run by the tests: no image is pulled or pushed there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
registry="" platform=""
while [ $# -gt 0 ]; do
  case "$1" in
    --push) registry="${2:?--push needs a registry, e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com}"; shift 2 ;;
    --platform) platform="${2:?--platform needs a value such as linux/arm64}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
registry="${registry%/}"

version="$(awk '/^\[workspace.package\]/ {p=1; next} /^\[/ {p=0} p && $1 == "version" {gsub(/"/, "", $3); print $3; exit}' "$ROOT/Cargo.toml")"
[ -n "$version" ] || { echo "no [workspace.package] version in Cargo.toml" >&2; exit 1; }

if command -v docker >/dev/null 2>&1; then
  builder=(docker build)
elif command -v buildah >/dev/null 2>&1; then
  builder=(buildah build --layers)
elif command -v podman >/dev/null 2>&1; then
  builder=(podman build)
else
  echo "scripts/images.sh needs docker, buildah or podman" >&2
  exit 1
fi
push_with="${builder[0]}"
[ -n "$platform" ] && builder+=(--platform "$platform")

server="sparkyard/sparkyard:$version"
tools="sparkyard/tools:$version"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "${builder[*]} $server"
(cd "$ROOT" && DOCKER_BUILDKIT=1 "${builder[@]}" -f images/sparkyard/Dockerfile -t "$server" .)
say "${builder[*]} $tools"
(cd "$ROOT" && DOCKER_BUILDKIT=1 "${builder[@]}" -f images/tools/Dockerfile \
  --build-arg "SPARKYARD_IMAGE=$server" -t "$tools" .)

tags=("$server" "$tools")
if [ -n "$registry" ]; then
  tags=()
  # REGISTRY/sparkyard:<v> and REGISTRY/sparkyard/tools:<v>: the chart's image.repository
  # and toolsImage.repository are then REGISTRY/sparkyard and REGISTRY/sparkyard/tools.
  for pair in "$server=$registry/sparkyard:$version" "$tools=$registry/sparkyard/tools:$version"; do
    image="${pair%%=*}" remote="${pair#*=}"
    "$push_with" tag "$image" "$remote"
    say "$push_with push $remote"
    "$push_with" push "$remote"
    tags+=("$remote")
  done
fi
printf '%s\n' "${tags[@]}"
