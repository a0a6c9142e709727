# The declarative twin of `collab bootstrap`: same resources, same least-privilege roles.
# Members get project roles for Cloud SQL only; storage roles are granted on the bucket, never
# project-wide.

locals {
  bucket = coalesce(var.bucket, "${var.project}-zenml-artifacts")

  services = ["sqladmin.googleapis.com", "storage.googleapis.com"]

  project_roles_by_auth = {
    iam      = ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]
    password = ["roles/cloudsql.client"]
  }
  project_roles = local.project_roles_by_auth[var.db_auth]
  bucket_roles  = ["roles/storage.objectAdmin", "roles/storage.legacyBucketReader"]

  project_bindings = {
    for pair in setproduct(var.members, local.project_roles) :
    "${pair[1]} ${pair[0]}" => { member = pair[0], role = pair[1] }
  }
  bucket_bindings = {
    for pair in setproduct(var.members, local.bucket_roles) :
    "${pair[1]} ${pair[0]}" => { member = pair[0], role = pair[1] }
  }

  # Cloud SQL's names for IAM users: the email, minus ".gserviceaccount.com" for service accounts.
  iam_users = {
    for m in var.members : m => {
      name = trimsuffix(split(":", m)[1], ".gserviceaccount.com")
      type = startswith(m, "serviceAccount:") ? "CLOUD_IAM_SERVICE_ACCOUNT" : "CLOUD_IAM_USER"
    }
  }
  # Built-in users for password auth: the email's local part, [a-z0-9_], at most 32 characters.
  password_users = {
    for m in var.members : m => substr(replace(lower(split("@", split(":", m)[1])[0]), "/[^a-z0-9_]/", "_"), 0, 32)
  }
}

resource "google_project_service" "required" {
  for_each           = toset(local.services)
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

resource "google_sql_database_instance" "metadata" {
  #checkov:skip=CKV_GCP_60:Members connect from laptops through the Cloud SQL Auth Proxy or connector (IAM + a client certificate Cloud SQL issues); a private IP would need a VPC and VPN for every member. No authorized networks are set, so the public IP accepts nothing else.
  project             = var.project
  name                = var.instance
  region              = var.region
  database_version    = "MYSQL_8_0"
  deletion_protection = true

  settings {
    tier = var.tier

    backup_configuration {
      enabled            = true
      binary_log_enabled = true
    }

    # A public IP without authorized networks: only the Auth Proxy / connector can connect,
    # and Cloud SQL requires the client certificate they present (bootstrap: sslMode).
    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    dynamic "database_flags" {
      for_each = var.db_auth == "iam" ? ["on"] : []
      content {
        name  = "cloudsql_iam_authentication"
        value = database_flags.value
      }
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_sql_database" "zenml" {
  project   = var.project
  instance  = google_sql_database_instance.metadata.name
  name      = var.database
  charset   = "utf8mb4"
  collation = "utf8mb4_general_ci"
}

resource "google_sql_user" "iam" {
  for_each = var.db_auth == "iam" ? local.iam_users : {}
  project  = var.project
  instance = google_sql_database_instance.metadata.name
  name     = each.value.name
  type     = each.value.type
}

# With password auth the generated passwords live in the Terraform state: keep the state private.
resource "random_password" "member" {
  for_each = var.db_auth == "password" ? local.password_users : {}
  length   = 32
  special  = false
}

resource "google_sql_user" "password" {
  for_each = var.db_auth == "password" ? local.password_users : {}
  project  = var.project
  instance = google_sql_database_instance.metadata.name
  name     = each.value
  host     = "%"
  type     = "BUILT_IN"
  password = random_password.member[each.key].result
}

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Usage-log buckets are GCS's legacy access log; who read or wrote what is in Cloud Audit Logs (enable Data Access logs for storage.googleapis.com, see README), which need no second bucket to secure.
  #checkov:skip=CKV_GCP_78:Artifacts are content-addressed and created only with if_generation_match=0, so no object is ever overwritten and versioning would keep nothing; deletions are covered by soft delete below.
  project                     = var.project
  name                        = local.bucket
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Google's default for new buckets (bootstrap's bucket gets the same): a deleted artifact
  # can be restored for 7 days.
  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "member" {
  for_each = local.project_bindings
  project  = var.project
  role     = each.value.role
  member   = each.value.member
}

resource "google_storage_bucket_iam_member" "member" {
  for_each = local.bucket_bindings
  bucket   = google_storage_bucket.artifacts.name
  role     = each.value.role
  member   = each.value.member
}
