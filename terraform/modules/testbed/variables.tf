variable "datacenters" {
  description = "Datacenters by name: servers (1-9), clients (0-99), gateways (0-9). DC number d (name order) gets the LAN 10.201.d.0/24."
  type = map(object({
    servers  = optional(number, 3)
    clients  = optional(number, 0)
    gateways = optional(number, 0)
  }))

  validation {
    condition     = length(var.datacenters) >= 1 && length(var.datacenters) <= 200
    error_message = "Give 1 to 200 datacenters."
  }
  validation {
    condition     = alltrue([for name in keys(var.datacenters) : can(regex("^[a-z][a-z0-9-]{0,15}$", name))])
    error_message = "Datacenter names are 1-16 characters of a-z, 0-9 and '-', starting with a letter."
  }
  validation {
    condition = alltrue([for dc in values(var.datacenters) :
      dc.servers >= 1 && dc.servers <= 9 && floor(dc.servers) == dc.servers &&
      dc.clients >= 0 && dc.clients <= 99 && floor(dc.clients) == dc.clients &&
      dc.gateways >= 0 && dc.gateways <= 9 && floor(dc.gateways) == dc.gateways
    ])
    error_message = "Each datacenter has 1-9 servers, 0-99 clients and 0-9 gateways (whole numbers)."
  }
}

variable "wan_links" {
  description = "WAN link properties between two datacenters' gateways (both need gateways): delay as a duration (\"40ms\"), loss in percent. Recorded in the topology; applied once the testbed's link emulator exists."
  type = list(object({
    between      = tuple([string, string])
    delay        = optional(string)
    loss_percent = optional(number)
  }))
  default = []

  validation {
    condition = alltrue([for l in var.wan_links :
      l.between[0] != l.between[1] &&
      contains(keys(var.datacenters), l.between[0]) &&
      contains(keys(var.datacenters), l.between[1])
    ])
    error_message = "Each WAN link joins two different datacenters of var.datacenters."
  }
  validation {
    condition = alltrue([for l in var.wan_links :
      l.loss_percent == null ? true : (l.loss_percent >= 0 && l.loss_percent <= 100)
    ])
    error_message = "loss_percent is between 0 and 100."
  }
}

variable "run_dir" {
  description = "The testbed's run directory (state file, agent data dirs and logs). The module owns it: destroy deletes it."
  type        = string
  default     = "/tmp/meridian-testbed"

  validation {
    condition     = startswith(var.run_dir, "/") && length(trimsuffix(var.run_dir, "/")) > 1
    error_message = "run_dir is an absolute path other than /."
  }
}

variable "testbed" {
  description = "The `testbed` binary (a path, or a name on PATH)."
  type        = string
  default     = "testbed"
}

variable "meridian" {
  description = "The `meridian` binary the agents run; null: the one beside `testbed`, then PATH."
  type        = string
  default     = null
}

variable "raft_multiplier" {
  description = "performance.raft_multiplier of every agent: 1 elects a leader in 1-2 s; Consul's default is 5."
  type        = number
  default     = 1

  validation {
    condition     = var.raft_multiplier >= 1 && var.raft_multiplier <= 10 && floor(var.raft_multiplier) == var.raft_multiplier
    error_message = "raft_multiplier is a whole number from 1 to 10."
  }
}

variable "agent_extra_args" {
  description = "More `meridian agent` flags for every agent."
  type        = list(string)
  default     = []
}

variable "up_timeout" {
  description = "How long `testbed up` waits for a leader in every datacenter."
  type        = string
  default     = "60s"
}
