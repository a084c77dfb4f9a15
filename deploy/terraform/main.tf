# realm-server on Kubernetes: a namespace, a Secret for the metrics key, and a Helm release of
# the chart in deploy/helm/realm (deploy/README.md). The providers (helm, kubernetes) are
# configured by the caller.

locals {
  chart = coalesce(var.chart_path, "${path.module}/../helm/realm")
  # The chart's fullname (templates/_helpers.tpl): the release name if it contains "realm".
  fullname  = strcontains(var.release_name, "realm") ? var.release_name : "${var.release_name}-realm"
  namespace = var.create_namespace ? kubernetes_namespace_v1.realm[0].metadata[0].name : var.namespace

  # The tenants file: tenants_toml, then api_keys' tenant, its keys as sha256 only.
  key_tenant = length(var.api_keys) == 0 ? "" : join("\n", [
    "[[tenant]]",
    "name = \"${var.tenant_name}\"",
    "key_sha256 = [${join(", ", [for k in var.api_keys : "\"${sha256(k)}\""])}]",
  ])
  tenants = trimspace(join("\n\n", compact([var.tenants_toml, local.key_tenant])))

  values = {
    replicaCount = var.replicas
    image = {
      repository = var.image_repository
      tag        = var.gpu ? "vulkan" : "cpu"
      digest     = var.image_digest
    }
    model = {
      file          = var.model_file
      sha256        = var.model_sha256
      url           = var.model_url
      existingClaim = var.model_url == "" ? var.model_claim : ""
    }
    auth    = { existingSecret = kubernetes_secret_v1.keys.metadata[0].name }
    tenants = local.tenants
    autoscaling = {
      enabled     = var.max_replicas > var.replicas
      minReplicas = var.replicas
      maxReplicas = max(var.max_replicas, var.replicas)
    }
    ingress        = { enabled = var.ingress_host != "", host = var.ingress_host }
    serviceMonitor = { enabled = var.service_monitor }
  }
}

resource "kubernetes_namespace_v1" "realm" {
  count = var.create_namespace ? 1 : 0
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of"          = "realm"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }
}

resource "kubernetes_secret_v1" "keys" {
  metadata {
    name      = "${var.release_name}-keys"
    namespace = local.namespace
    labels    = { "app.kubernetes.io/part-of" = "realm" }
  }
  type = "Opaque"
  data = var.metrics_key == "" ? {} : { "metrics-key" = var.metrics_key }
}

resource "helm_release" "realm" {
  name             = var.release_name
  namespace        = local.namespace
  chart            = local.chart
  create_namespace = false
  atomic           = true
  wait             = true
  timeout          = 900
  values = compact([
    var.gpu ? file("${local.chart}/values-gpu.yaml") : "",
    yamlencode(local.values),
    length(var.extra_values) == 0 ? "" : yamlencode(var.extra_values),
  ])
}
