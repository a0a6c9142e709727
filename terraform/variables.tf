variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the Cloud SQL instance and the bucket, e.g. europe-west1."
  type        = string
}

variable "instance" {
  description = "Cloud SQL instance name."
  type        = string
  default     = "zenml-metadata"
}

variable "bucket" {
  description = "Artifact bucket name; null means <project>-zenml-artifacts."
  type        = string
  default     = null
}

variable "tier" {
  description = "Cloud SQL machine tier."
  type        = string
  default     = "db-custom-1-3840"
}

variable "database" {
  description = "MySQL database name."
  type        = string
  default     = "zenml"
}

variable "members" {
  description = "Team members: user:alice@example.com or serviceAccount:sa@p.iam.gserviceaccount.com."
  type        = list(string)
  validation {
    condition     = length(var.members) > 0 && alltrue([for m in var.members : can(regex("^(user|serviceAccount):[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", m))])
    error_message = "Each member must look like user:alice@example.com or serviceAccount:sa@p.iam.gserviceaccount.com."
  }
}

variable "db_auth" {
  description = "How members log in to MySQL: iam (Cloud SQL IAM database authentication) or password."
  type        = string
  default     = "iam"
  validation {
    condition     = contains(["iam", "password"], var.db_auth)
    error_message = "db_auth must be iam or password."
  }
}

variable "compute" {
  description = "Steps on Vertex AI: \"vertex\" adds the APIs, the step image repository, the runner account and the members' compute roles (needs db_auth = \"iam\"); \"none\" adds nothing."
  type        = string
  default     = "none"
  validation {
    condition     = contains(["none", "vertex"], var.compute)
    error_message = "compute must be none or vertex."
  }
}

variable "runner_account" {
  description = "Account id of the service account Vertex AI jobs run as."
  type        = string
  default     = "collab-runner"
}

variable "repository" {
  description = "Artifact Registry Docker repository (in var.region) for the step images."
  type        = string
  default     = "collab"
}
