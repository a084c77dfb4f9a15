# Sourced by the deploy scripts: podman with the small config it needs on this project's
# machines (../shared/TOOLCHAIN.md: without it every `RUN` step and `podman run` fail with
# "setrlimit RLIMIT_NOFILE" / "cgroups in hybrid mode"). Kept in the cache directory; a
# CONTAINERS_CONF already set wins.
_realm_cache="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
if [ -z "${CONTAINERS_CONF:-}" ]; then
  mkdir -p "$_realm_cache/containers"
  cat >"$_realm_cache/containers/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
  export CONTAINERS_CONF="$_realm_cache/containers/containers.conf"
fi
command -v podman >/dev/null 2>&1 || { echo "podman is not installed: scripts/setup.sh installs it" >&2; exit 1; }
