# umbra-relay container image.
#
#   docker build -t umbra-relay .
#   docker run -p 7878:7878 -v umbra-data:/var/lib/umbra-relay umbra-relay
#
# The relay listens on 0.0.0.0:7878 inside the container. Terminate TLS in
# front of it (a reverse proxy or load balancer), or mount a certificate and
# key and pass --tls-cert/--tls-key. With PostgreSQL, set UMBRA_DATABASE_URL.

FROM rust:1-bookworm AS build
WORKDIR /src
# .dockerignore keeps target/, .git/ and local databases out of the context.
COPY . .
# Migrations are embedded into the binary at compile time (sqlx::migrate!).
# The release profile ships without debuginfo (about 15 MB); for a build with
# line tables use --build-arg PROFILE=release-debuginfo (docs/OPERATIONS.md).
ARG PROFILE=release
RUN cargo build --profile "$PROFILE" --locked -p umbra-relay \
 && install -Dm755 "target/$PROFILE/umbra-relay" /out/umbra-relay

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/umbra-relay --create-home --shell /usr/sbin/nologin umbra
COPY --from=build /out/umbra-relay /usr/local/bin/umbra-relay
USER umbra
WORKDIR /var/lib/umbra-relay
VOLUME ["/var/lib/umbra-relay"]
ENV UMBRA_RELAY_LISTEN=0.0.0.0:7878 \
    UMBRA_RELAY_DATA_DIR=/var/lib/umbra-relay \
    UMBRA_RELAY_LOG_LEVEL=info
EXPOSE 7878
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/umbra-relay"]
