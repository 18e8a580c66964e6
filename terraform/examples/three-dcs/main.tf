# Three datacenters of three servers, a client and a gateway host each, on this machine, in
# network namespaces (run as root). Terraform's state lives in a Meridian agent through
# terraform's own `consul` backend: start one first (`meridian agent -dev`, see
# terraform/README.md).

terraform {
  required_version = ">= 1.9"

  backend "consul" {
    address = "127.0.0.1:8500"
    scheme  = "http"
    path    = "meridian/testbed/three-dcs"
  }
}

variable "datacenters" {
  description = "Datacenters by name: servers, clients, gateways."
  type = map(object({
    servers  = optional(number, 3)
    clients  = optional(number, 0)
    gateways = optional(number, 0)
  }))
  default = {
    dc1 = { servers = 3, clients = 1, gateways = 1 }
    dc2 = { servers = 3, clients = 1, gateways = 1 }
    dc3 = { servers = 3, clients = 1, gateways = 1 }
  }
}

variable "wan_links" {
  description = "WAN link delay/loss between DC pairs (recorded; applied once the testbed's link emulator exists)."
  type = list(object({
    between      = tuple([string, string])
    delay        = optional(string)
    loss_percent = optional(number)
  }))
  default = [
    { between = ["dc1", "dc2"], delay = "20ms" },
    { between = ["dc1", "dc3"], delay = "60ms", loss_percent = 0.5 },
    { between = ["dc2", "dc3"], delay = "45ms" },
  ]
}

variable "run_dir" {
  description = "The testbed's run directory (deleted by terraform destroy)."
  type        = string
  default     = "/tmp/meridian-three-dcs"
}

variable "bin_dir" {
  description = "Where `testbed` and `meridian` are (default: this checkout's debug build)."
  type        = string
  default     = null
}

locals {
  bin_dir = var.bin_dir != null ? var.bin_dir : abspath("${path.module}/../../../target/debug")
}

module "testbed" {
  source = "../../modules/testbed"

  datacenters = var.datacenters
  wan_links   = var.wan_links
  run_dir     = var.run_dir
  testbed     = "${local.bin_dir}/testbed"
  meridian    = "${local.bin_dir}/meridian"
}

output "datacenters" {
  description = "Per datacenter: its LAN and every host's address."
  value       = module.testbed.datacenters
}

output "run_dir" {
  value = module.testbed.run_dir
}

output "commands" {
  description = "Status, a DNS lookup inside each DC, logs, down (as root)."
  value       = module.testbed.commands
}
