# moodwire: the API (and, with `worker`, the background jobs) in a small runtime image.
#   docker build -t moodwire .
#   docker run --rm -p 8000:8000 moodwire                     # embedded defaults, offline
#   docker run --rm -p 8000:8000 -e REDIS_URL=redis://redis:6379 moodwire serve

FROM rust:1.95-slim-bookworm AS build
# python3-pip: scripts/setup_ort.sh fetches the pinned ONNX Runtime library from its PyPI wheel.
# make, g++: the bundled librdkafka (Kafka client) is built from source.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/setup_ort.sh && cargo build --release --locked --bin moodwire

FROM debian:bookworm-slim
# curl: the health check.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app moodwire
WORKDIR /app
# The binary finds .ort/ and models/ beside its parent folders (see README, Configuration).
COPY --from=build /src/target/release/moodwire /app/bin/moodwire
COPY --from=build /src/.ort /app/.ort
COPY models /app/models
COPY data/sample /app/data/sample
COPY scripts/keywords.txt /app/scripts/keywords.txt
RUN mkdir -p /app/data/moodwire && chown moodwire /app/data/moodwire
USER 10001
ENV MOODWIRE_ADDR=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["/app/bin/moodwire"]
CMD ["serve"]
