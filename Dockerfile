# txkv server image. Not built in this repository's CI (no Docker engine there); written
# by reading. Official Node 20 images on Debian bookworm (glibc 2.36), which the
# prebuilt RocksDB and uWebSockets.js binaries need.
#
#   docker build -t txkv .
#   docker run -p 7070:7070 -v txkv-data:/var/lib/txkv -e TXKV_AUTH_TOKENS=change-me txkv
#   docker run --rm -it --network host txkv shell --endpoint ws://127.0.0.1:7070 --token change-me
#
# The default command serves with configs/docker.toml: host 0.0.0.0, data on the volume,
# auth required (tokens from TXKV_AUTH_TOKENS or TXKV_AUTH_TOKEN_FILE at run time; the
# server refuses to start on 0.0.0.0 without one). /v1/status and /metrics stay open for
# the healthcheck and scrapers. Any setting can be overridden with TXKV_* variables.

# ---- build: all dependencies, compile TypeScript, then drop the dev dependencies
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY schemas ./schemas
COPY src ./src
COPY bench ./bench
# uPlot (the dashboard's charts) is a dev dependency: keep its files before pruning
RUN npm run build \
 && mkdir -p /opt/uplot && cp -r node_modules/uplot/package.json node_modules/uplot/dist /opt/uplot/ \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: production dependencies and the compiled server only
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /opt/uplot ./node_modules/uplot
COPY --from=build /app/dist ./dist
# the dashboard page is served from its source file (no build step)
COPY --from=build /app/src/dashboard/index.html ./src/dashboard/index.html
COPY bin ./bin
COPY configs ./configs
# the image's user: "node" (uid 1000) from the base image, owner of the data volume
RUN mkdir -p /var/lib/txkv && chown node:node /var/lib/txkv
USER node
VOLUME ["/var/lib/txkv"]
EXPOSE 7070
# no curl in slim images: Node's fetch; TXKV_PORT moves the port, so follow it
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TXKV_PORT || 7070) + '/v1/status').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1: txkv serve handles SIGTERM itself (drains commits, closes RocksDB); node
# options: src/server/node-flags.ts SERVER_NODE_FLAGS (one V8 helper thread)
ENTRYPOINT ["node", "--v8-pool-size=1", "--heap-growing-percent=300", "--no-allocation-site-pretenuring", "/app/bin/txkv.js"]
CMD ["serve", "--config", "/app/configs/docker.toml"]
