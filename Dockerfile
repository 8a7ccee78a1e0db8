# The Concierge image, built from source on a machine that can pull base images:
#
#     docker compose build        (or: docker build -t concierge:local .)
#
# Stage 1 compiles the release binary with the pinned toolchain; stage 2 is a slim
# Debian with that binary only (it links nothing beyond glibc, libm and libgcc_s).
# A machine without a registry builds the same image with deploy/build-image.sh
# (deploy/Dockerfile.scratch: the host's binary and its libraries on an empty image).
# Both images agree on everything below the FROM line of their last stage.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p concierge --bin concierge \
 && cp target/release/concierge /concierge

FROM debian:${DEBIAN_RELEASE}-slim
COPY --from=build /concierge /usr/local/bin/concierge
# /certs: owned by the user, so a named volume mounted there starts out writable by
# it (docker-compose.secure.yml's `certs` service writes keys there, mode 0600).
RUN mkdir -p /data /certs && chown 10001:10001 /data /certs
USER 10001:10001
ENV HOST=0.0.0.0 ACTOR_PORT=23456 CLIENT_PORT=8080 DATA_DIR=/data RUST_LOG=info
EXPOSE 8080 23456
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/concierge", "serve"]
