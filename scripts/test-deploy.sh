#!/usr/bin/env bash
# The deployment checks (deploy/, issue 15), every file through a real tool; scripts/test.sh
# runs this after scripts/setup.sh, which installs the tools (podman, debootstrap, Debian's
# docker-compose and prometheus, and the venv $REALM_CACHE_DIR/venv-deploy from
# deploy/requirements-test.txt).
#
#  1. YAML: yamllint over deploy/.
#  2. Helm chart: lint (strict) and render with the Helm SDK for the default values, the GPU
#     values and a URL-model test file; the manifests through `kubernetes-validate --strict` and
#     `checkov --framework kubernetes`; a broken manifest must fail the validator, and values
#     with no model source must fail the render.
#  3. Terraform module: fmt -check, init/validate (what they can do offline), the module's
#     variables and chart values from its HCL, checkov --framework terraform; a misformatted
#     copy must fail.
#  4. Dockerfiles: checkov --framework dockerfile. Compose: docker-compose 1.29's schema check
#     and podman-compose's; a bad key must fail. Prometheus config: promtool check config.
#     Dashboard: structure, every query through promtool check rules.
#  5. Image: scripts/build-image.sh (base by debootstrap, builder, image; cached).
#  6. Container: run it read-only with the model mounted, /health, the image's HEALTHCHECK, a
#     chat completion through the published port, then SIGTERM mid-stream: the stream finishes,
#     the container exits 0.
#  7. Model fetched at start: from a local HTTP server on loopback, sha256 checked; a wrong
#     sha256 refuses to start; the init-container mode (`fetch`).
#  8. Compose: realm + Prometheus (Debian's, as a local image) up with compose.yaml as it is;
#     Prometheus scrapes realm:8080 and answers every query of the Grafana dashboard.
#  9. The Vulkan image, built and serving a chat completion through wgpu on Mesa's lavapipe
#     (REALM_DEPLOY_VULKAN=0 skips it).
# Containers, the compose project and processes started here are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv-deploy"
PY="$VENV/bin/python"
MODELS="$CACHE/models"
SMOL=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
IMAGE=localhost/realm-server
TAG="realm-dt-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/realm-deploy-test.XXXXXX")
export BC_SKIP_MAPPING=TRUE   # checkov: no download of Bridgecrew's mapping (offline)
T0=$SECONDS

step() { printf '\n-- deploy: %s (%d s)\n' "$*" "$((SECONDS - T0))" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# A command that must fail (a check of a check): its output is kept for the log.
must_fail() {
  local what="$1"; shift
  if "$@" >"$WORK/must-fail.log" 2>&1; then
    cat "$WORK/must-fail.log" >&2
    die "$what: the check passed a broken file"
  fi
  local why
  why=$(grep -m1 -iE 'error|fail|invalid|unsupported|not a' "$WORK/must-fail.log" || tail -n1 "$WORK/must-fail.log")
  printf '  ok, %s: rejected (%s)\n' "$what" "$(printf %s "$why" | cut -c1-150)" >&2
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A container's log has PATTERN (read whole first: `podman logs | grep -q` under pipefail fails
# when grep stops reading early).
logs_have() { podman logs "$1" >"$WORK/$1.log" 2>&1; grep -q -- "$2" "$WORK/$1.log"; }
terraform_quiet() { grep -v -e 'CLI configuration' -e terraformrc -e '^╷' -e '^│' -e '^╵' -e '^$' || true; }

[ -x "$PY" ] || die "$VENV is missing: run scripts/setup.sh"
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh

PIDS=()
cleanup() {
  set +e
  for c in $(podman ps -a --format '{{.Names}}' | grep "^$TAG" || true); do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  if [ -n "${COMPOSE_UP:-}" ]; then
    "$VENV/bin/podman-compose" -p "$TAG" -f deploy/compose/compose.yaml down -v -t 5 >/dev/null 2>&1
  fi
  podman volume rm -f "$TAG-models" >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

step "yamllint deploy/"
"$VENV/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/

step "Helm chart: lint and render (Helm SDK), kubernetes-validate --strict, checkov"
CHART=deploy/helm/realm
for values in - "$CHART/values-gpu.yaml" deploy/tests/helm-values-url.yaml; do
  name=$(basename "${values/#-/default}" .yaml)
  echo "  values: $values" >&2
  "$PY" deploy/tests/helm_render.py "$CHART" "$values" "$WORK/$name.yaml" Deployment Service PodDisruptionBudget >&2
  # ServiceMonitor (the Prometheus Operator's CRD) is the only kind without a bundled schema.
  "$VENV/bin/kubernetes-validate" --strict "$WORK/$name.yaml" >"$WORK/kv.log" 2>&1 || { cat "$WORK/kv.log" >&2; die "kubernetes-validate: $name"; }
  if grep "Couldn't find schema" "$WORK/kv.log" | grep -v 'kind ServiceMonitor'; then die "kubernetes-validate had no schema for a kind"; fi
  echo "  kubernetes-validate --strict: $(grep -c passed "$WORK/kv.log") manifests passed" >&2
done
grep -q 'nvidia.com/gpu: 1' "$WORK/values-gpu.yaml" || die "the GPU values rendered no nvidia.com/gpu"
grep -q 'name: fetch-model' "$WORK/helm-values-url.yaml" || die "the URL values rendered no init container"
"$VENV/bin/checkov" -f "$WORK/default.yaml" -f "$WORK/values-gpu.yaml" -f "$WORK/helm-values-url.yaml" \
  --framework kubernetes --skip-download --compact --quiet >"$WORK/checkov.log" 2>&1 \
  || { cat "$WORK/checkov.log" >&2; die "checkov --framework kubernetes"; }
grep -E 'Passed checks' "$WORK/checkov.log" | sed 's/^/  checkov kubernetes: /' >&2
# Checks of the checks.
sed 's/containerPort: 8080/containerPort: "8080"/' "$WORK/default.yaml" >"$WORK/broken-type.yaml"
must_fail "a port as a string" "$VENV/bin/kubernetes-validate" --strict "$WORK/broken-type.yaml"
sed 's/^\(\s*\)readinessProbe:/\1readynessProbe:/' "$WORK/default.yaml" >"$WORK/broken-field.yaml"
must_fail "a misspelt field" "$VENV/bin/kubernetes-validate" --strict "$WORK/broken-field.yaml"
printf 'model: {existingClaim: "", url: ""}\n' >"$WORK/no-model.yaml"
must_fail "values with no model source" "$PY" deploy/tests/helm_render.py "$CHART" "$WORK/no-model.yaml" "$WORK/x.yaml"
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/; s/runAsNonRoot: true/runAsNonRoot: false/' \
  "$WORK/default.yaml" >"$WORK/insecure.yaml"
must_fail "a writable root filesystem, root allowed" "$VENV/bin/checkov" -f "$WORK/insecure.yaml" \
  --framework kubernetes --skip-download --compact --quiet

step "Terraform module: fmt, init/validate, HCL checks, checkov"
cp -r deploy/terraform "$WORK/terraform"
"$PY" deploy/tests/terraform_check.py fmt "$WORK/terraform" 2> >(terraform_quiet >&2)
"$PY" deploy/tests/terraform_check.py validate "$WORK/terraform" 2> >(terraform_quiet >&2)
"$PY" deploy/tests/terraform_check.py module deploy/terraform "$CHART"
"$VENV/bin/checkov" -d deploy/terraform --framework terraform --skip-download --compact --quiet >"$WORK/checkov-tf.log" 2>&1 \
  || { cat "$WORK/checkov-tf.log" >&2; die "checkov --framework terraform"; }
grep -E 'Passed checks' "$WORK/checkov-tf.log" | sed 's/^/  checkov terraform: /' >&2
cp -r deploy/terraform "$WORK/tf-bad"
sed -i 's/^    replicaCount = var.replicas/      replicaCount=var.replicas/' "$WORK/tf-bad/main.tf"
must_fail "a misformatted module" "$PY" deploy/tests/terraform_check.py fmt "$WORK/tf-bad"
sed -i 's/replicaCount=var.replicas/replicaCont = var.replicas/' "$WORK/tf-bad/main.tf"
must_fail "a chart value that does not exist" "$PY" deploy/tests/terraform_check.py module "$WORK/tf-bad" "$CHART"

step "Dockerfiles (checkov), compose (docker-compose 1.29 schema, podman-compose), promtool, dashboard"
"$VENV/bin/checkov" -f deploy/docker/Dockerfile -f deploy/docker/Dockerfile.builder -f deploy/compose/Dockerfile.prometheus \
  --framework dockerfile --skip-download --compact --quiet >"$WORK/checkov-df.log" 2>&1 \
  || { cat "$WORK/checkov-df.log" >&2; die "checkov --framework dockerfile"; }
grep -E 'Passed checks' "$WORK/checkov-df.log" | sed 's/^/  checkov dockerfile: /' >&2
docker-compose -f deploy/compose/compose.yaml config -q
"$VENV/bin/podman-compose" -f deploy/compose/compose.yaml config >/dev/null
echo "  compose.yaml: docker-compose config and podman-compose config ok" >&2
sed 's/^    read_only: true/    read_only: true\n    readonly: true/' deploy/compose/compose.yaml >"$WORK/compose-bad.yaml"
must_fail "compose: an unknown service key" docker-compose -f "$WORK/compose-bad.yaml" config -q
promtool check config deploy/compose/prometheus.yml >&2
sed 's/scrape_interval: 5s/scrape_interval: 5 seconds/' deploy/compose/prometheus.yml >"$WORK/prometheus-bad.yml"
must_fail "a bad scrape interval" promtool check config "$WORK/prometheus-bad.yml"
DASH=deploy/compose/grafana/dashboards/realm.json
"$PY" deploy/tests/dashboard.py check "$DASH" deploy/compose/grafana/provisioning/datasources/prometheus.yaml >&2
"$PY" deploy/tests/dashboard.py rules "$DASH" "$WORK/dashboard-rules.yml"
promtool check rules "$WORK/dashboard-rules.yml" >&2
sed 's/realm_time_to_first_token_seconds_bucket/realm_time_to_first_token_bucket/' "$DASH" >"$WORK/realm-bad.json"
must_fail "a dashboard query of a metric realm-server does not export" \
  "$PY" deploy/tests/dashboard.py check "$WORK/realm-bad.json" deploy/compose/grafana/provisioning/datasources/prometheus.yaml

step "image: scripts/build-image.sh cpu (base, builder and build cache in $CACHE)"
build_image() { # podman's build log to a file, shown on failure
  scripts/build-image.sh "$1" >"$WORK/build-$1.log" 2>&1 || { tail -40 "$WORK/build-$1.log" >&2; die "scripts/build-image.sh $1"; }
  grep '^\[build-image\]' "$WORK/build-$1.log" | sed 's/^/  /' >&2
}
build_image cpu

step "container: read-only, model mounted; /health, HEALTHCHECK, chat, SIGTERM mid-stream drains and exits 0"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
podman run -d --name "$TAG-cpu" --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -p "127.0.0.1:$PORT:8080" -v "$MODELS:/models:ro" -e "REALM_MODEL=/models/$SMOL" -e "REALM_MODEL_SHA256=$SMOL_SHA" \
  -v "$ROOT/deploy/compose/tenants.toml:/etc/realm/tenants.toml:ro" \
  "$IMAGE:cpu" --config /etc/realm/tenants.toml --alias smollm2 >/dev/null 2>"$WORK/podman-run.log" \
  || { cat "$WORK/podman-run.log" >&2; die "podman run"; }
echo "  /health ok $(python3 deploy/tests/container_check.py health "$URL" 60) s after podman run returned" >&2
podman healthcheck run "$TAG-cpu" 2>/dev/null || die "the image's HEALTHCHECK failed"
echo "  HEALTHCHECK (curl /health in the container): healthy" >&2
[ "$(podman inspect --format '{{.Config.User}}' "$TAG-cpu")" = "10001:10001" ] || die "the container does not run as 10001"
python3 deploy/tests/container_check.py chat "$URL" alpha >&2
python3 deploy/tests/container_check.py drain "$URL" alpha "$TAG-cpu" >&2
logs_have "$TAG-cpu" 'realm_server::serve: stopped' || die "no 'stopped' line in the server's log: $(tail -5 "$WORK/$TAG-cpu.log")"
podman rm "$TAG-cpu" >/dev/null 2>&1

step "model fetched at start from a loopback HTTP server, sha256 checked; init-container mode"
HTTP_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$MODELS" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
PIDS+=($!)
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# --network=host: the container reaches the loopback HTTP server; the server listens on loopback.
fetch_run() { # name, sha256, args...
  local name="$1" sha="$2"; shift 2
  podman run --name "$TAG-$name" --network=host --read-only --tmpfs /tmp --cap-drop ALL \
    -v "$TAG-models:/models" -e "REALM_MODEL_URL=http://127.0.0.1:$HTTP_PORT/$SMOL" -e "REALM_MODEL_SHA256=$sha" \
    -e REALM_HOST=127.0.0.1 -e "REALM_PORT=$PORT" "$@" 2>/dev/null
}
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$HTTP_PORT/" 2>/dev/null && break; sleep 0.1; done
WRONG=$(printf '%064d' 0)
if fetch_run wrong "$WRONG" "$IMAGE:cpu" >"$WORK/wrong.log" 2>&1; then cat "$WORK/wrong.log" >&2; die "a wrong sha256 started"; fi
logs_have "$TAG-wrong" 'sha256 mismatch' || die "no sha256 mismatch message: $(cat "$WORK/$TAG-wrong.log")"
echo "  a wrong REALM_MODEL_SHA256: refused ($(grep -m1 mismatch "$WORK/$TAG-wrong.log" | cut -c1-90)…)" >&2
fetch_run init "$SMOL_SHA" "$IMAGE:cpu" fetch >/dev/null || die "the init-container mode (fetch) failed: $(podman logs "$TAG-init" 2>&1)"
echo "  init-container mode (fetch): downloaded, sha256 ok, exit 0" >&2
fetch_run fetched "$SMOL_SHA" -d "$IMAGE:cpu" >/dev/null
python3 deploy/tests/container_check.py health "$URL" 60 >/dev/null
logs_have "$TAG-fetched" 'matches its sha256: not fetched' || die "the second start fetched again: $(head -5 "$WORK/$TAG-fetched.log")"
status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"Hi!"}],"max_tokens":4}')
[ "$status" = 200 ] || die "chat on the fetched model: HTTP $status"
echo "  server on the fetched model (the volume kept it: not fetched again): chat 200" >&2
podman stop -t 30 "$TAG-fetched" >/dev/null 2>&1
[ "$(podman inspect --format '{{.State.ExitCode}}' "$TAG-fetched")" = 0 ] || die "podman stop: exit code not 0"
podman rm "$TAG-wrong" "$TAG-init" "$TAG-fetched" >/dev/null 2>&1

step "compose: realm + Prometheus from compose.yaml; every Grafana query answered"
podman image exists localhost/realm-prometheus:debian \
  || nice -n 10 podman build --format docker --build-arg BASE=localhost/realm-base:bookworm \
       -t localhost/realm-prometheus:debian -f deploy/compose/Dockerfile.prometheus deploy/compose >"$WORK/prom-build.log" 2>&1 \
  || { tail -20 "$WORK/prom-build.log" >&2; die "building the Prometheus stand-in image"; }
REALM_HOST_PORT=$(free_port)
PROMETHEUS_HOST_PORT=$(free_port)
export REALM_HOST_PORT PROMETHEUS_HOST_PORT PROMETHEUS_IMAGE=localhost/realm-prometheus:debian REALM_MODEL_DIR="$MODELS"
COMPOSE_UP=1
"$VENV/bin/podman-compose" -p "$TAG" -f deploy/compose/compose.yaml up -d realm prometheus >"$WORK/compose.log" 2>&1 \
  || { cat "$WORK/compose.log" >&2; die "podman-compose up"; }
URL="http://127.0.0.1:$REALM_HOST_PORT"
PROM="http://127.0.0.1:$PROMETHEUS_HOST_PORT"
python3 deploy/tests/container_check.py health "$URL" 60 >/dev/null
"$PY" deploy/tests/dashboard.py up "$PROM" realm 60 >&2
# Traffic twice, a scrape between: a counter's series starts at its first request, and a rate
# needs a sample before the increase.
python3 deploy/tests/container_check.py traffic "$URL" alpha trial >&2
"$PY" deploy/tests/dashboard.py seen "$PROM" realm_rate_limited_total 60 >&2
python3 deploy/tests/container_check.py traffic "$URL" alpha trial >&2
python3 deploy/tests/container_check.py chat "$URL" alpha >/dev/null
"$PY" deploy/tests/dashboard.py query "$DASH" "$PROM" 90 >&2
"$VENV/bin/podman-compose" -p "$TAG" -f deploy/compose/compose.yaml down -v -t 40 >"$WORK/compose.log" 2>&1
COMPOSE_UP=

if [ "${REALM_DEPLOY_VULKAN:-1}" = 1 ]; then
  step "Vulkan image: build, serve on lavapipe (wgpu)"
  build_image vulkan
  PORT=$(free_port)
  URL="http://127.0.0.1:$PORT"
  podman run -d --name "$TAG-vk" --read-only --tmpfs /tmp -p "127.0.0.1:$PORT:8080" -v "$MODELS:/models:ro" \
    -e "REALM_MODEL=/models/$SMOL" "$IMAGE:vulkan" -c 1024 >/dev/null 2>&1
  python3 deploy/tests/container_check.py health "$URL" 120 >/dev/null || { podman logs "$TAG-vk" >&2; die "vulkan image"; }
  logs_have "$TAG-vk" 'model loaded backend=wgpu' || die "the vulkan image did not load on wgpu: $(tail -5 "$WORK/$TAG-vk.log")"
  grep -m1 'model loaded' "$WORK/$TAG-vk.log" | sed 's/^/  /' >&2
  status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Hi!"}],"max_tokens":4}')
  [ "$status" = 200 ] || die "chat on the vulkan image: HTTP $status"
  echo "  chat on wgpu (lavapipe) in the vulkan image: 200" >&2
  podman stop -t 30 "$TAG-vk" >/dev/null 2>&1
fi

step "all deploy checks passed"
