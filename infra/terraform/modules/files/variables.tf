variable "name" {
  description = "Name prefix of the bucket, e.g. `palaver-production` (the bucket is `<name>-files-<account id>`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "name must be 4-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN the bucket's objects are encrypted with (SSE-KMS): modules/security's `files` key."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "prefix" {
  description = "Key prefix the application writes under (`--file-store s3://<bucket>/<prefix>`); the api role may touch nothing else."
  type        = string
  default     = "files"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{0,62}$", var.prefix))
    error_message = "prefix must be 1-63 lower-case letters, digits, dots, underscores or hyphens, without slashes."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which an unfinished multipart upload is aborted and its parts deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1 && floor(var.abort_incomplete_multipart_days) == var.abort_incomplete_multipart_days
    error_message = "abort_incomplete_multipart_days must be a whole number of at least 1."
  }
}

variable "noncurrent_version_days" {
  description = "Days a deleted or overwritten file stays recoverable (noncurrent versions) before it expires."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number of at least 1."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds files (throw-away environments and the emulator test only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
