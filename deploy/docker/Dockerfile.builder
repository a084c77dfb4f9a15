# The build stage's image where the official rust image cannot be pulled: the local base plus a C
# linker and the Rust toolchain of the machine that builds it, mounted at /toolchain by
# scripts/build-image.sh (podman build -v SYSROOT:/toolchain:ro). Laid out as the official image
# (CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH), x86_64-linux target only.
# checkov:skip=CKV_DOCKER_7:BASE is a build argument (the local base, tagged bookworm)
# checkov:skip=CKV_DOCKER_2:a build stage's image, never run as a service: nothing to health-check
# checkov:skip=CKV_DOCKER_3:a build stage's image: it compiles as root and is not shipped
ARG BASE=localhost/realm-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/rust/lib/rustlib /usr/local/cargo/bin \
 && cp -a /toolchain/bin /toolchain/libexec /usr/local/rust/ \
 && cp -a /toolchain/lib/*.so* /usr/local/rust/lib/ \
 && cp -a /toolchain/lib/rustlib/x86_64-unknown-linux-gnu /toolchain/lib/rustlib/etc /usr/local/rust/lib/rustlib/ \
 && for b in cargo rustc rustdoc; do ln -s /usr/local/rust/bin/$b /usr/local/cargo/bin/$b; done \
 && cargo --version && rustc --version
WORKDIR /src
