# syntax=docker/dockerfile:1
# One image for every role: the command picks it (serve --role web | serve --role worker | migrate).
# Node's major here must match the `node` devDependency the tests run on (a test checks).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript and generate the Prisma client ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts are skipped: the image's own Node runs everything (the `node` devDependency is
# for developer machines), and Prisma's engine download is not needed.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
# The Prisma CLI only needs a schema engine path to exist for `generate`.
RUN PRISMA_SCHEMA_ENGINE_BINARY=package.json node node_modules/prisma/build/index.js generate --no-hints \
 && node node_modules/typescript/bin/tsc -p tsconfig.build.json

# --- runtime dependencies only --------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev alone keeps the lockfile's devOptional packages (prisma and typescript are optional peers of
# @prisma/client as well as devDependencies: 387 MB instead of 133). Without devDependencies in the
# manifest they are left out, and the lockfile still pins every version.
RUN npm pkg delete devDependencies \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Node as PID 1 ignores SIGTERM until it installs a handler (serve does once started; migrate and the
# token commands never do), so a stop during start-up or a migration would wait for the kill. tini runs
# as PID 1 instead and passes signals on to node.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
COPY static ./static
COPY package.json ./
# The base image's unprivileged user; the app writes nothing to disk.
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/main.js"]
CMD ["serve", "--role", "web"]
