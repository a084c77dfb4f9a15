#!/usr/bin/env bash
# Build realm-server's container image with podman (deploy/docker/Dockerfile), making its base
# and builder images locally, since no public image registry is reachable here:
#
#   base     localhost/realm-base:bookworm         Debian bookworm minbase by debootstrap, slimmed
#                                                  like debian:bookworm-slim (the Dockerfile's BASE)
#   builder  localhost/realm-builder:1.95-bookworm that base + gcc + this machine's Rust toolchain
#                                                  (the Dockerfile's BUILDER; the official image
#                                                  elsewhere)
#   image    localhost/realm-server:cpu            (and :vulkan with `scripts/build-image.sh vulkan`)
#
# Usage: scripts/build-image.sh [cpu] [vulkan]      (default: cpu)
# Cached under $REALM_CACHE_DIR (~/.cache/realm): the debootstrapped root filesystem as a tar
# (images/), the podman config (containers/), and the in-image Rust build's cargo registry and
# target directory (image-build/), mounted into the build stage so a rebuild compiles only what
# changed. Images live in podman's own storage; each is made only when missing.
# REALM_REBUILD_BASE=1 remakes the base and builder. The build context is the working tree;
# REALM_IMAGE_SOURCE=head builds the last commit instead (`git archive HEAD`), so that
# uncommitted work in the checkout does not reach the image.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
BASE=localhost/realm-base:bookworm
BUILDER=localhost/realm-builder:1.95-bookworm
IMAGE="${REALM_IMAGE:-localhost/realm-server}"
MIRROR="${REALM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '[build-image] %s\n' "$*" >&2; }

# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh

have_image() { podman image exists "$1"; }

make_base() {
  local tar="$CACHE/images/debian-bookworm-minbase.tar"
  if [ ! -s "$tar" ] || [ "${REALM_REBUILD_BASE:-0}" = 1 ]; then
    local t0=$SECONDS rootfs
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/realm-rootfs.XXXXXX")
    log "debootstrap bookworm (minbase) from $MIRROR into $rootfs"
    nice -n 10 debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
      || { tail -20 "$rootfs.log" >&2; exit 1; }
    # What debian:bookworm-slim does: no docs, man pages or locales, now or from later installs.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/cache/apt/*.bin \
      "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/90-no-recommends"
    # As the official image's docker-clean: no package caches left in layers.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    # This machine's apt sources and settings (the same mirror), and the CAs it adds to the
    # trust store (its HTTPS egress proxy signs with them), so that apt and cargo work in builds.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      rm -f "$rootfs/etc/apt/sources.list"
      cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
    fi
    cp /etc/apt/apt.conf.d/99artifact-registry "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
      chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    mkdir -p "$CACHE/images"
    tar -C "$rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$rootfs" "$rootfs.log"
    log "base root filesystem cached at $tar ($((SECONDS - t0)) s)"
  fi
  log "importing $tar as $BASE"
  podman import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tar" "$BASE" >/dev/null
}

make_builder() {
  local tc
  tc="$(rustc --print sysroot)"
  local ver; ver="$(rustc --version | cut -d' ' -f2)"
  [ "${ver%.*}" = 1.95 ] || log "warning: this machine's rustc is $ver, the builder is tagged 1.95"
  log "making $BUILDER from $BASE and the Rust toolchain at $tc"
  nice -n 10 podman build --format docker --build-arg BASE="$BASE" -v "$tc:/toolchain:ro" \
    -t "$BUILDER" -f deploy/docker/Dockerfile.builder deploy/docker >&2
}

if [ "${REALM_REBUILD_BASE:-0}" = 1 ] || ! have_image "$BASE"; then make_base; fi
if [ "${REALM_REBUILD_BASE:-0}" = 1 ] || ! have_image "$BUILDER"; then make_builder; fi

CONTEXT=$PWD
if [ "${REALM_IMAGE_SOURCE:-tree}" = head ]; then
  CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/realm-image-context.XXXXXX")
  trap 'rm -rf "$CONTEXT"' EXIT
  git archive HEAD | tar -x -C "$CONTEXT"
  log "building from HEAD ($(git rev-parse --short HEAD)), not the working tree"
fi

mkdir -p "$CACHE/image-build/target" "$CACHE/image-build/cargo-registry"
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(cpu)
for t in "${targets[@]}"; do
  case "$t" in cpu | vulkan) ;; *) echo "usage: scripts/build-image.sh [cpu] [vulkan]" >&2; exit 2 ;; esac
  t0=$SECONDS
  log "building $IMAGE:$t"
  # --format docker keeps HEALTHCHECK (the OCI format has none).
  nice -n 10 podman build --format docker --target "$t" \
    --build-arg BASE="$BASE" --build-arg BUILDER="$BUILDER" \
    -v "$CACHE/image-build/target:/src/target" \
    -v "$CACHE/image-build/cargo-registry:/usr/local/cargo/registry" \
    --ignorefile "$CONTEXT/deploy/docker/Dockerfile.dockerignore" \
    -f "$CONTEXT/deploy/docker/Dockerfile" -t "$IMAGE:$t" "$CONTEXT" >&2
  log "$IMAGE:$t built in $((SECONDS - t0)) s: $(podman image inspect --format '{{.Size}}' "$IMAGE:$t") bytes"
done
