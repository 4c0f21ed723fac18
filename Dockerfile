# syntax=docker/dockerfile:1
#
# Chat gateway image. Three stages so that the runtime image carries neither the compiler, the dev dependencies nor
# the sources: `build` compiles, `deps` installs production dependencies only, `runtime` copies the two results.
#
#   docker build -t ghcr.io/example/chat-gateway:$(git rev-parse --short HEAD) .
#
# The base image is pinned to an exact Node release (current LTS line) rather than `24-bookworm-slim`, so a rebuild
# of the same commit yields the same runtime. Pin the digest too (node:X@sha256:...) where builds must be bit-for-bit
# reproducible; both stages must keep using the same image so native add-ons match the runtime ABI.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# --ignore-scripts: `npm run build` generates the Prisma client itself, and skipping dependency install scripts keeps
# the build from fetching anything beyond the registry tarballs (@prisma/engines' postinstall would download native
# engines the gateway never uses: it talks to PostgreSQL through the pg driver adapter). Lockfile first, sources
# after, so editing a source file does not invalidate the dependency layer. The workspaces' manifests (packages/*: the
# protocol and the SDK) come with the lockfile: `npm ci` checks the lockfile against every workspace and links them
# into node_modules. `npm run build` compiles the two packages first (the server imports the protocol's dist through
# that link), then the server and the chat page.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json ./packages/protocol/
COPY packages/sdk/package.json ./packages/sdk/
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Production dependencies only, in their own stage: this layer depends on the lockfile alone, so it is reused by every
# build that does not change dependencies. The package's postinstall (prisma generate) is skipped on purpose: the
# generated client is TypeScript under src/, compiled into dist/ by the build stage, so regenerating it here would
# need the schema and the sources and produce nothing the runtime reads. The workspaces' manifests again, so that
# node_modules/@chat-gateway/protocol is the link to packages/protocol the runtime stage fills with its dist.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json ./packages/protocol/
COPY packages/sdk/package.json ./packages/sdk/
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and is only readable by the runtime user: a compromised process cannot rewrite its
# own code, and the pod runs with a read-only root filesystem anyway. package.json is needed at run time: it marks
# dist/*.js as ES modules and is how the migration runner finds prisma/migrations.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The server imports @chat-gateway/protocol at run time (schemas, error statuses, room names): node_modules links it
# to packages/protocol, which needs its manifest (the exports map) and its compiled dist, nothing else.
COPY --from=build /app/packages/protocol/package.json ./packages/protocol/
COPY --from=build /app/packages/protocol/dist ./packages/protocol/dist
COPY package.json ./
COPY prisma ./prisma
# Numeric uid:gid (the image's `node` user) so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 1000:1000
EXPOSE 3000
# The gateway fails readiness and drains on SIGTERM; Node is PID 1 through the exec-form CMD below, so the signal
# reaches it directly (npm or a shell in between would swallow or delay it).
STOPSIGNAL SIGTERM
# For plain Docker and Compose; Kubernetes ignores HEALTHCHECK and uses the Deployment's probes. Slim images have no
# curl, so Node's own fetch does the request. No --start-period: the first check only runs after one interval, which
# is already longer than the gateway takes to listen.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
