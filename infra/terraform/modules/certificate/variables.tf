variable "host_name" {
  description = "Public host name of the environment, e.g. `chat.example.com`: the certificate's domain and the release's Ingress host."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.host_name)) && length(var.host_name) <= 253
    error_message = "host_name must be a fully qualified lower-case DNS name without a trailing dot (no wildcard)."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of host_name: the certificate is requested and validated by DNS there. null or empty: the issued certificate of host_name is looked up in ACM."
  type        = string
  default     = null

  validation {
    condition     = var.route53_zone_id == null || var.route53_zone_id == "" || can(regex("^Z[A-Z0-9]{1,31}$", var.route53_zone_id))
    error_message = "route53_zone_id must be a Route 53 hosted zone ID (Z...)."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
