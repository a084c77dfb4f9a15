variable "namespace" {
  description = "Namespace to install realm-server into."
  type        = string
  default     = "realm"
}

variable "create_namespace" {
  description = "Create the namespace (false: it exists already)."
  type        = bool
  default     = true
}

variable "release_name" {
  description = "Name of the Helm release."
  type        = string
  default     = "realm"
}

variable "chart_path" {
  description = "Path (or repository URL) of the realm Helm chart; default: this repository's deploy/helm/realm."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "realm-server image, without its tag (scripts/build-image.sh makes localhost/realm-server; push it to your registry)."
  type        = string
  default     = "localhost/realm-server"
}

variable "image_digest" {
  description = "Pin the image by digest (sha256:...); empty: use the tag (cpu, or vulkan with gpu)."
  type        = string
  default     = ""
  validation {
    condition     = var.image_digest == "" || can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest must be empty or sha256: followed by 64 hex digits."
  }
}

variable "replicas" {
  description = "Replicas (the minimum when autoscaling)."
  type        = number
  default     = 2
  validation {
    condition     = var.replicas >= 1 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number >= 1."
  }
}

variable "max_replicas" {
  description = "Autoscaling's maximum; equal to replicas: no autoscaler."
  type        = number
  default     = 2
}

variable "model_file" {
  description = "File name of the GGUF model in the pod."
  type        = string
  default     = "SmolLM2-135M-Instruct.Q4_1.gguf"
}

variable "model_url" {
  description = "URL an init container downloads the model from (each pod its own copy); empty: the model is on model_claim."
  type        = string
  default     = ""
}

variable "model_sha256" {
  description = "The model's sha256; the pod refuses to start on a mismatch."
  type        = string
  default     = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.model_sha256))
    error_message = "model_sha256 must be 64 lowercase hex digits."
  }
}

variable "model_claim" {
  description = "PersistentVolumeClaim holding model_file (used when model_url is empty)."
  type        = string
  default     = "realm-models"
}

variable "api_keys" {
  description = "API keys of the tenant tenant_name (no limits). Only their sha256 reach the cluster, in the tenants file; empty: no keys (an open server unless tenants_toml has some)."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "tenant_name" {
  description = "Tenant of api_keys."
  type        = string
  default     = "main"
}

variable "tenants_toml" {
  description = "More tenants, as realm-server's tenants file (TOML, sha256 of keys and limits); put before api_keys' tenant."
  type        = string
  default     = ""
}

variable "metrics_key" {
  description = "Key /metrics requires (kept in the Secret; the ServiceMonitor sends it); empty: /metrics is open."
  type        = string
  default     = ""
  sensitive   = true
}

variable "gpu" {
  description = "Run the Vulkan image on NVIDIA GPU nodes (values-gpu.yaml: one nvidia.com/gpu per pod, node selector, tolerations)."
  type        = bool
  default     = false
}

variable "ingress_host" {
  description = "Host name of an Ingress (ingress-nginx, streaming timeouts); empty: no Ingress."
  type        = string
  default     = ""
}

variable "service_monitor" {
  description = "Create a ServiceMonitor (needs the Prometheus Operator's CRDs)."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More chart values (a map, merged last)."
  type        = any
  default     = {}
}
