variable "name" {
  description = "Name of the user pool, e.g. `palaver-production`."
  type        = string
}

variable "callback_urls" {
  description = "Where the hosted UI may send the browser back with a code (https://<host>/...)."
  type        = list(string)

  validation {
    condition     = alltrue([for u in var.callback_urls : startswith(u, "https://")])
    error_message = "callback_urls must be https URLs."
  }
}

variable "logout_urls" {
  description = "Where the hosted UI may send the browser after signing out."
  type        = list(string)
  default     = []
}

variable "domain_prefix" {
  description = "Prefix of the hosted-UI domain (<prefix>.auth.<region>.amazoncognito.com); null for none."
  type        = string
  default     = null
}

variable "self_sign_up" {
  description = "Whether people may create their own account in the pool (otherwise administrators invite them)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "The user pool refuses deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
