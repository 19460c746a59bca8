# supportd container image: build in a full Rust image, run from a slim one.
# Not built on the development machine (no Docker engine there); see README.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p supportd \
 && strip target/release/supportd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/supportd --create-home supportd
COPY --from=build /src/target/release/supportd /usr/local/bin/supportd
COPY config/ /etc/supportd/
WORKDIR /var/lib/supportd
USER supportd
ENV SUPPORTD_WEB__ADDRESS=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/supportd", "--config", "/etc/supportd/default.toml"]
CMD ["serve"]
