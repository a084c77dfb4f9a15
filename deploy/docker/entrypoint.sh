#!/bin/sh
# realm-server's container entrypoint. Makes sure the model is at $REALM_MODEL — mounted there,
# or fetched from $REALM_MODEL_URL — checks it against $REALM_MODEL_SHA256 when one is given
# (required with a URL), then execs realm-server as PID 1, so that SIGTERM reaches it and the
# drain runs (native-server/README.md, "Shutdown"). Arguments are realm-server's flags (it gets
# -m, --host, --port and --backend from here: set those through the variables below); the
# single argument `fetch` only fetches and checks the model, then exits (an init container).
#
#   REALM_MODEL         path of the GGUF file (default /models/model.gguf)
#   REALM_MODEL_URL     fetch the model from here when REALM_MODEL is missing or does not match
#   REALM_MODEL_SHA256  the model's sha256 (64 hex digits)
#   REALM_HOST          address to listen on (default 0.0.0.0: the container's own network)
#   REALM_PORT          port to listen on (default 8080; the health check uses it)
#   REALM_BACKEND       cpu or wgpu (the vulkan image's default)
#   REALM_API_KEY, REALM_METRICS_KEY: read by realm-server itself.
set -eu
model="${REALM_MODEL:-/models/model.gguf}"
sha="${REALM_MODEL_SHA256:-}"
url="${REALM_MODEL_URL:-}"

say() { printf 'realm-entrypoint: %s\n' "$*" >&2; }
matches() { [ -f "$1" ] && printf '%s  %s\n' "$sha" "$1" | sha256sum -c --status; }

if [ -n "$sha" ] && ! printf '%s' "$sha" | grep -Eq '^[0-9a-fA-F]{64}$'; then
  say "REALM_MODEL_SHA256 is not 64 hex digits: $sha"; exit 2
fi
if [ -n "$url" ]; then
  [ -n "$sha" ] || { say "REALM_MODEL_URL needs REALM_MODEL_SHA256"; exit 2; }
  if matches "$model"; then
    say "$model is there and matches its sha256: not fetched"
  else
    say "fetching $url to $model"
    # In the background and waited for, so that SIGTERM during a download stops it at once.
    trap 'kill "$pid" 2>/dev/null; rm -f "$model.part"; exit 143' TERM INT
    curl -fsSL --retry 3 --connect-timeout 20 -o "$model.part" "$url" & pid=$!
    wait "$pid" || { say "download of $url failed"; rm -f "$model.part"; exit 1; }
    trap - TERM INT
    if ! matches "$model.part"; then
      say "sha256 mismatch for $url: want $sha, got $(sha256sum "$model.part" | cut -d' ' -f1)"
      rm -f "$model.part"; exit 1
    fi
    mv "$model.part" "$model"
  fi
elif [ -n "$sha" ]; then
  matches "$model" || { say "$model is missing or does not match REALM_MODEL_SHA256"; exit 1; }
fi
[ -f "$model" ] || { say "no model at $model: mount one there, or set REALM_MODEL_URL and REALM_MODEL_SHA256"; exit 1; }
if [ "$#" -eq 1 ] && [ "$1" = fetch ]; then exit 0; fi

exec /usr/local/bin/realm-server -m "$model" --host "${REALM_HOST:-0.0.0.0}" --port "${REALM_PORT:-8080}" \
  --backend "${REALM_BACKEND:-cpu}" "$@"
