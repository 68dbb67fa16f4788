# Agent image: `codex app-server` (pinned CODEX_VERSION) as an unprivileged user, one container per group.
# The relay talks JSON-RPC lines over the container's attached stdio; the container gets the group's
# workspace at /workspace and the group's codex home at /home/codex/.codex, and no secret of any kind.
#
# Build with `npm run image:build` (setup/build-image.ts), which picks the base image, vendors the codex
# tarball and passes the build args. By hand:
#   online:  docker build -t codex-relay-agent:0.169.0 .
#   offline: npm pack @openai/codex@0.169.0-linux-x64 --pack-destination container/vendor
#            docker build --build-arg BASE_IMAGE=codex-relay-base:bookworm -t codex-relay-agent:0.169.0 .
# Works with the classic builder and BuildKit alike (no RUN --mount, no heredocs).

# Any Debian-like image with /bin/sh, tar and gzip; npm only for the online path, apt only when git,
# ripgrep or ca-certificates are missing.
ARG BASE_IMAGE=node:20-bookworm-slim
# Must equal the @openai/codex devDependency in package.json (test/unit/version-pin.test.ts checks it).
ARG CODEX_VERSION=0.169.0

# ---- stage 1: unpack the native codex binary. The ~170 MB tarball stays in this stage only. ----
FROM ${BASE_IMAGE} AS codex
ARG CODEX_VERSION
COPY container/ /tmp/codex-context/
RUN sh /tmp/codex-context/install-codex.sh "${CODEX_VERSION}" /tmp/codex-context && rm -rf /tmp/codex-context

# ---- stage 2: the runtime image. Node is not needed: the musl binary is static. ----
FROM ${BASE_IMAGE}
ARG CODEX_VERSION
COPY container/prepare-runtime.sh /tmp/prepare-runtime.sh
RUN sh /tmp/prepare-runtime.sh 10001 && rm /tmp/prepare-runtime.sh
COPY --from=codex /opt/codex /opt/codex

LABEL org.opencontainers.image.title="codex-relay-agent" \
      org.opencontainers.image.description="codex app-server for Codex Relay (one container per chat group)" \
      codex-relay.codex-version="${CODEX_VERSION}"

# HOME matters: codex keeps its state in ~/.codex. No VOLUME on purpose: an unmounted run must not leave
# anonymous volumes behind, and the relay bind-mounts both directories itself.
ENV HOME=/home/codex
# Numeric so orchestrators can verify "non-root" without reading /etc/passwd.
USER 10001:10001
WORKDIR /workspace
# stdio transport (the default). Plugins are disabled: their sync would only try to reach github.com.
CMD ["codex", "app-server", "--disable", "plugins"]
