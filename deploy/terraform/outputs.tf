output "namespace" {
  description = "Namespace realm-server runs in."
  value       = local.namespace
}

output "service" {
  description = "In-cluster address of realm-server's OpenAI API."
  value       = "http://${local.fullname}.${local.namespace}.svc:8080/v1"
}

output "release" {
  description = "The Helm release's name, chart version and status."
  value = {
    name    = helm_release.realm.name
    version = helm_release.realm.version
    status  = helm_release.realm.status
  }
}
