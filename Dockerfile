# The eventlog image: both programs, `eventlog-operator` (the default entrypoint)
# and `eventlog-server` (what the operator runs in every log pod), plus `eventlog`
# (all sub-commands). Build with `bash scripts/build-image.sh` (see docs/image.md),
# which also makes a local stand-in for the base image where no registry is reachable.
#
# Works with the classic builder and with BuildKit (no BuildKit-only syntax).

# The official Node 24 image. Every stage uses the same base, so the Node that
# compiles is the Node that runs.
ARG BASE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript to dist/ ------------------------------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /src
# npm-extra-ca.pe[m]: optional (the glob may match nothing). scripts/build-image.sh
# adds it when the build host reaches the registry through a TLS-intercepting proxy.
COPY package.json package-lock.json npm-extra-ca.pe[m] ./
# --ignore-scripts: nothing we need has an install script; the `node` devDependency's
# script would only download a second copy of Node that the base already has.
RUN if [ -f npm-extra-ca.pem ]; then export NODE_EXTRA_CA_CERTS="$PWD/npm-extra-ca.pem"; fi \
 && npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && chmod 0755 dist/cli.js dist/bin/eventlog-server.js dist/bin/eventlog-operator.js

# --- prod-deps: runtime dependencies only (no typescript, vitest, testcontainers, node) --
FROM ${BASE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json npm-extra-ca.pe[m] ./
RUN if [ -f npm-extra-ca.pem ]; then export NODE_EXTRA_CA_CERTS="$PWD/npm-extra-ca.pem"; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier \
 && rm -rf /root/.npm

# --- the image ------------------------------------------------------------------
FROM ${BASE_IMAGE}
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Both programs on PATH, under the names pod specs use (`command: [eventlog-server]`).
RUN ln -s /app/dist/bin/eventlog-operator.js /usr/local/bin/eventlog-operator \
 && ln -s /app/dist/bin/eventlog-server.js /usr/local/bin/eventlog-server \
 && ln -s /app/dist/cli.js /usr/local/bin/eventlog \
 && mkdir -p /data && chown 65532:65532 /data
ENV NODE_ENV=production
# Numeric, so Kubernetes `runAsNonRoot` can verify it without a passwd entry.
USER 65532:65532
# No tini: Node is PID 1 and that is fine here. Both programs install SIGTERM/SIGINT
# handlers (a PID 1 without handlers would ignore SIGTERM; ours shut down and exit 0,
# test/container checks `docker stop`), and neither spawns child processes, so there
# are no zombies to reap.
ENTRYPOINT ["eventlog-operator"]
