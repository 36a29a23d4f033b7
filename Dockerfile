# syntax=docker/dockerfile:1

# Debian (glibc) rather than Alpine: @temporalio/core-bridge ships prebuilt
# native modules for linux-gnu only, and the worker cannot load them on musl.
ARG NODE_IMAGE=node:20-bookworm-slim

########## build: compile TypeScript, then drop dev dependencies ##########
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first so the dependency layer is reused when only source changes.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund

# Only the shipped build's configs: tsconfig.build.json compiles src/ alone into lib/.
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY lua ./lua
COPY migrations ./migrations
COPY public ./public

# webpack, swc and memfs are regular dependencies of @temporalio/worker (it
# bundles lib/workflows at worker start-up), so --omit=dev keeps them.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

########## runtime ##########
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Files stay root-owned: the app only reads them, so the unprivileged user
# cannot modify its own code or dependencies.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/lib ./lib
COPY --from=build /app/lua ./lua
COPY --from=build /app/migrations ./migrations
# The ops page and /docs (Swagger UI's own files come with node_modules).
COPY --from=build /app/public ./public

USER node
EXPOSE 3000

# Default process is the API; docker-compose.yml overrides it for the worker
# and the migration job.
CMD ["node", "lib/api/server.js"]
