output "connection_name" {
  description = "Instance connection name (project:region:instance) for collab.yaml."
  value       = google_sql_database_instance.metadata.connection_name
}

output "bucket" {
  description = "The artifact bucket."
  value       = google_storage_bucket.artifacts.name
}

output "artifact_uri" {
  description = "Artifact store URI for collab.yaml."
  value       = "gs://${google_storage_bucket.artifacts.name}"
}

output "member_passwords" {
  description = "db_auth = password only: member -> {username, password}. Hand each over privately."
  sensitive   = true
  value = {
    for m, name in google_sql_user.password : m => { username = name.name, password = name.password }
  }
}
