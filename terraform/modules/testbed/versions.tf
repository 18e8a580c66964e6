# Only what is built into terraform: `terraform_data` (provider terraform.io/builtin/terraform)
# and the functions. No provider is downloaded, so `terraform init` works offline.
terraform {
  required_version = ">= 1.9"
}
