#!/bin/sh
# Build stage only: installs the pinned codex native binary (and its bundled rg and bwrap) into /opt/codex,
# keeping the layout the npm platform package ships (bin/, codex-path/, codex-resources/, codex-package.json),
# because the binary finds its resources relative to itself.
#   offline: container/vendor/openai-codex-<version>-<platform>.tgz (made on the host by `npm pack`) is used,
#            no network needed;
#   online:  the same registry tarball is fetched with `npm pack` (needs npm in the base image).
# Either way the tarball's version and the installed binary's `--version` must equal CODEX_VERSION.
# Usage: install-codex.sh <codex-version> <context-dir>
set -eu

fail() { echo "install-codex: ERROR: $*" >&2; exit 1; }

version="${1:?usage: install-codex.sh <codex-version> <context-dir>}"
context="${2:?usage: install-codex.sh <codex-version> <context-dir>}"
vendor="$context/vendor"
dest=/opt/codex

case "$(uname -m)" in
  x86_64 | amd64) platform=linux-x64; triple=x86_64-unknown-linux-musl ;;
  aarch64 | arm64) platform=linux-arm64; triple=aarch64-unknown-linux-musl ;;
  *) fail "unsupported architecture $(uname -m); codex ships linux-x64 and linux-arm64 only" ;;
esac

want="openai-codex-${version}-${platform}.tgz"
if [ -f "$vendor/$want" ]; then
  echo "install-codex: offline install from vendored $want"
  tarball="$vendor/$want"
else
  # A vendored tarball of another version or architecture means the host and CODEX_VERSION disagree:
  # say so instead of silently going to the network.
  others=$(ls "$vendor" 2>/dev/null | grep -E '^openai-codex-.*\.tgz$' || true)
  if [ -n "$others" ]; then
    fail "container/vendor holds $(echo $others) but CODEX_VERSION=$version on $platform needs $want." \
      "Delete the stale tarball or run 'npm run image:build' (it packs the right one)."
  fi
  command -v npm >/dev/null 2>&1 ||
    fail "no vendored $want and no npm in the base image. Either run on the host:" \
      "'npm pack @openai/codex@${version}-${platform} --pack-destination container/vendor'" \
      "or build FROM an image with npm (the default node:20-bookworm-slim)."
  echo "install-codex: online install: npm pack @openai/codex@${version}-${platform}"
  mkdir -p /tmp/codex-pack
  (cd /tmp/codex-pack && npm pack --loglevel=error "@openai/codex@${version}-${platform}" >/dev/null) ||
    fail "npm pack @openai/codex@${version}-${platform} failed (is the npm registry reachable?)"
  tarball="/tmp/codex-pack/$want"
  [ -f "$tarball" ] || fail "npm pack did not produce $want"
fi

pkg_version=$(tar -xzOf "$tarball" package/package.json | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -n 1)
[ "$pkg_version" = "${version}-${platform}" ] ||
  fail "$(basename "$tarball") contains @openai/codex@${pkg_version:-<unknown>}, expected ${version}-${platform} (CODEX_VERSION)."

mkdir -p "$dest"
tar -xzf "$tarball" -C "$dest" --strip-components=3 --no-same-owner "package/vendor/$triple"
[ -x "$dest/bin/codex" ] || fail "$(basename "$tarball") has no vendor/$triple/bin/codex"
chmod -R a+rX "$dest"

reported=$("$dest/bin/codex" --version 2>/dev/null || true)
[ "$reported" = "codex-cli $version" ] ||
  fail "installed binary reports '${reported:-nothing}', expected 'codex-cli $version'"
rm -rf /tmp/codex-pack
echo "install-codex: installed $reported into $dest"
