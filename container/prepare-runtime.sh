#!/bin/sh
# Final image stage: what the agent needs besides codex itself, and the unprivileged user it runs as.
#   • git, ripgrep, ca-certificates: installed with apt only when missing (the local registry-free base
#     image codex-relay-base:bookworm already has them, and may have no reachable mirror);
#   • user codex (uid/gid 10001), home /home/codex; /home/codex/.codex is a mount point for the group's
#     codex home; /workspace is the group's workspace mount point. Both are owned by codex so the image
#     also works without mounts.
#   • /usr/local/bin/codex and /usr/local/bin/bwrap point into /opt/codex (copied in by the Dockerfile).
# Usage: prepare-runtime.sh <uid>
set -eu

uid="${1:-10001}"

missing=""
command -v git >/dev/null 2>&1 || missing="$missing git"
command -v rg >/dev/null 2>&1 || missing="$missing ripgrep"
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"
if [ -n "$missing" ]; then
  echo "prepare-runtime: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
else
  echo "prepare-runtime: git, rg and ca-certificates already present; apt not needed"
fi

getent group codex >/dev/null 2>&1 || groupadd --gid "$uid" codex
getent passwd codex >/dev/null 2>&1 || useradd --uid "$uid" --gid "$uid" --home-dir /home/codex --create-home --shell /bin/bash codex
mkdir -p /home/codex/.codex /workspace
chown "$uid:$uid" /home/codex /home/codex/.codex /workspace
chmod 0755 /home/codex /workspace
chmod 0700 /home/codex/.codex

ln -sf /opt/codex/bin/codex /usr/local/bin/codex
ln -sf /opt/codex/codex-resources/bwrap /usr/local/bin/bwrap
echo "prepare-runtime: user codex ($uid) ready"
