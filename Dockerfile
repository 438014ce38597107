# Images of the Statescope stack, built from this workspace (docker-compose.yaml
# picks the target):
#   --target exporter  the statescope-exporter binary on a slim Debian, as a non-root user
#   --target plugin    the built Grafana panel plugin (dist/), copied into a volume at start
# Base images are pinned; the Rust image is at least the workspace's rust-version
# (provisioning/test.sh checks both).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=debian:12-slim
ARG PLUGIN_RUNTIME_IMAGE=busybox:1.37

# --- the exporter -------------------------------------------------------------------
FROM ${RUST_IMAGE} AS exporter-build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build output between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p statescope-exporter \
    && install -m 0755 target/release/statescope-exporter /usr/local/bin/statescope-exporter

FROM ${RUNTIME_IMAGE} AS exporter
# ca-certificates: poll mode may fetch a service's status JSON over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/statescope --shell /usr/sbin/nologin statescope \
    && install -d -o statescope -g statescope -m 0750 /var/lib/statescope
COPY --from=exporter-build /usr/local/bin/statescope-exporter /usr/local/bin/statescope-exporter
USER statescope
VOLUME /var/lib/statescope
EXPOSE 9733
# Listens on all interfaces inside the container: the write API then needs a
# token (--token-file or STATESCOPE_TOKEN); docker-compose.yaml gives one.
ENTRYPOINT ["statescope-exporter", "--listen", "0.0.0.0:9733", "--data-dir", "/var/lib/statescope"]
CMD ["--demo"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=5 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9733 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# --- the panel plugin ---------------------------------------------------------------
FROM ${NODE_IMAGE} AS node

FROM ${RUST_IMAGE} AS plugin-build
# Node.js and npm from the official node image (same Debian release, same glibc).
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version \
    && rustup target add wasm32-unknown-unknown
WORKDIR /src
# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
COPY Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock) \
    && test -n "$version" \
    && cargo install wasm-bindgen-cli --version "$version" \
    && wasm-bindgen --version
COPY package.json package-lock.json ./
# The versions package-lock.json pins (it names every platform's optional
# binaries, so `npm install` changes nothing in it; see scripts/setup.sh).
RUN --mount=type=cache,target=/root/.npm npm install --no-audit --no-fund
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    npm run build \
    && test -f dist/plugin.json && test -f dist/module.js

FROM ${PLUGIN_RUNTIME_IMAGE} AS plugin
COPY --from=plugin-build /src/dist /plugin
# Replaces the volume's content with this build, so Grafana never mixes two versions.
CMD ["sh", "-c", "find /out -mindepth 1 -delete && cp -R /plugin/. /out/ && ls -l /out"]
