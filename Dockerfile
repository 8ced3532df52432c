# lockbox as a container (sidecar of `lockbox serve`, or `lockbox sync --interval`).
# UNBUILT: no Docker engine runs where this was written; it has not been built or run.
#
#   docker build -t lockbox .
#   Sidecar: run it in the application's network namespace (same pod / ECS task, or
#   --network container:app) and share the token through a volume or an env variable:
#   docker run --network container:app -v lockbox-token:/run/lockbox \
#     -e AWS_TOKEN=file:///run/lockbox/token lockbox serve --config /etc/lockbox/serve.toml

# Build: the dist profile (fat LTO, one codegen unit, stripped).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist -p lockbox-cli --bin lockbox

# Runtime: glibc, CA certificates, no shell, non-root (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/lockbox /usr/bin/lockbox
USER nonroot:nonroot
EXPOSE 2773
ENTRYPOINT ["/usr/bin/lockbox"]
CMD ["serve"]
