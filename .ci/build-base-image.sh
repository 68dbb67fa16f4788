#!/usr/bin/env bash
# Builds a local Debian bookworm base image for the agent container without any image registry:
# debootstrap a minimal rootfs with what the agent needs, then `docker import` it.
# Usage: .ci/build-base-image.sh [image-tag]   (default codex-relay-base:bookworm)
set -euo pipefail
tag="${1:-codex-relay-base:bookworm}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root=$(mktemp -d /tmp/codex-relay-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase --include=git,ripgrep,ca-certificates,bash,procps bookworm "$root" "$mirror" >/tmp/codex-relay-debootstrap.log 2>&1 \
  || { tail -n 30 /tmp/codex-relay-debootstrap.log; exit 1; }
# Keep the image small: apt lists and caches are not needed at run time.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
echo "built base image $tag"
