variable "secret_id" {
  description = "ARN or name of the secret to write."
  type        = string
}

variable "value" {
  description = "The non-secret fields of the JSON value; `password` is added, generated."
  type        = map(string)
}

variable "value_version" {
  description = "Version of the value: increase it to generate and write a new password."
  type        = number
  default     = 1
}

variable "password_length" {
  description = "Length of the generated password (letters and digits)."
  type        = number
  default     = 40

  validation {
    condition     = var.password_length >= 20 && var.password_length <= 4096
    error_message = "password_length must be between 20 and 4096."
  }
}
