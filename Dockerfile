# syntax=docker/dockerfile:1
# Build stage: compile the release binary with cached dependencies.
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations ./migrations
COPY assets ./assets
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/codesherpa /codesherpa

# Runtime stage: a small Debian image, no toolchain, non-root.
FROM debian:trixie-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home codesherpa
WORKDIR /app
COPY --from=build /codesherpa /usr/local/bin/codesherpa
USER codesherpa
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DEBUG=false \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite:///app/data/codesherpa.db
RUN mkdir -p /app/data
VOLUME ["/app/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["/usr/local/bin/codesherpa"]
CMD ["serve"]
