variable "state_bucket" {
  description = "S3 bucket holding the platform layer's state (the bucket of ../versions.tf)."
  type        = string
  default     = "palaver-terraform-state"
}

variable "state_region" {
  description = "Region of the state bucket."
  type        = string
  default     = "eu-west-1"
}
