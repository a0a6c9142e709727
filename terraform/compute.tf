# `collab bootstrap --compute vertex`: steps on Vertex AI custom jobs (var.compute = "vertex").
# The runner account jobs run as gets exactly a member's store roles (Cloud SQL client and
# instance user on the project, the object roles on the bucket, its IAM database user) and no
# project-wide storage role; members may create jobs, push to the step repository only, and act
# as the runner account only.

locals {
  vertex                      = var.compute == "vertex"
  compute_services            = local.vertex ? ["aiplatform.googleapis.com", "artifactregistry.googleapis.com"] : []
  compute_members             = local.vertex ? toset(var.members) : toset([])
  runner_roles                = local.vertex ? toset(local.project_roles_by_auth["iam"]) : toset([])
  runner_bucket               = local.vertex ? toset(local.bucket_roles) : toset([])
  member_compute_project_role = "roles/aiplatform.user"
  member_repository_role      = "roles/artifactregistry.writer"
  member_runner_role          = "roles/iam.serviceAccountUser"
}

resource "google_project_service" "compute" {
  for_each           = toset(local.compute_services)
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "steps" {
  #checkov:skip=CKV_GCP_84:Step images hold public dependencies and zenml-collab only, never data or secrets (code travels as an archive in the bucket); Google-managed encryption at rest applies, and a customer-managed KMS key would give every team a keyring to administer for nothing secret.
  count         = local.vertex ? 1 : 0
  project       = var.project
  location      = var.region
  repository_id = var.repository
  format        = "DOCKER"
  description   = "zenml-collab step images (collab image build --push)"

  depends_on = [google_project_service.compute]
}

resource "google_service_account" "runner" {
  count        = local.vertex ? 1 : 0
  project      = var.project
  account_id   = var.runner_account
  display_name = "zenml-collab step runner (Vertex AI jobs)"
}

resource "google_project_iam_member" "runner" {
  for_each = local.runner_roles
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.runner[0].email}"
}

resource "google_storage_bucket_iam_member" "runner" {
  for_each = local.runner_bucket
  bucket   = google_storage_bucket.artifacts.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.runner[0].email}"
}

# Its IAM database user (bootstrap also grants it the team database, as it does members).
resource "google_sql_user" "runner" {
  count    = local.vertex ? 1 : 0
  project  = var.project
  instance = google_sql_database_instance.metadata.name
  name     = trimsuffix(google_service_account.runner[0].email, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

resource "google_project_iam_member" "vertex_user" {
  for_each = local.compute_members
  project  = var.project
  role     = local.member_compute_project_role
  member   = each.value
}

resource "google_artifact_registry_repository_iam_member" "writer" {
  for_each   = local.compute_members
  project    = var.project
  location   = google_artifact_registry_repository.steps[0].location
  repository = google_artifact_registry_repository.steps[0].name
  role       = local.member_repository_role
  member     = each.value
}

resource "google_service_account_iam_member" "act_as" {
  for_each           = local.compute_members
  service_account_id = google_service_account.runner[0].name
  role               = local.member_runner_role
  member             = each.value
}
