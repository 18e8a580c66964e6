# Addresses follow the testbed's plan (testbed/src/plan.rs, testbed/README.md): datacenter
# number d is its position in name order (1-based) and its LAN is 10.201.d.0/24; servers are
# .11-.19, clients .101-.199, gateways .201-.209 and 10.202.d.i on the WAN segment. Agents
# serve HTTP on :8500 and DNS on :8600 at their address, and on 127.0.0.1 inside their host.

locals {
  dc_index = { for i, name in sort(keys(var.datacenters)) : name => i + 1 }

  datacenters = { for name, dc in var.datacenters : name => {
    index = local.dc_index[name]
    lan   = "10.201.${local.dc_index[name]}.0/24"
    servers = { for n in range(1, dc.servers + 1) :
    "${name}-s${n}" => "10.201.${local.dc_index[name]}.${10 + n}" }
    clients = { for n in range(1, dc.clients + 1) :
    "${name}-c${n}" => "10.201.${local.dc_index[name]}.${100 + n}" }
    gateways = { for n in range(1, dc.gateways + 1) : "${name}-g${n}" => {
      lan = "10.201.${local.dc_index[name]}.${200 + n}"
      wan = "10.202.${local.dc_index[name]}.${n}"
    } }
  } }

  hosts = merge([for name, dc in local.datacenters : merge(
    { for host, ip in dc.servers : host => { dc = name, role = "server", address = ip, wan_address = null } },
    { for host, ip in dc.clients : host => { dc = name, role = "client", address = ip, wan_address = null } },
    { for host, a in dc.gateways : host => { dc = name, role = "gateway", address = a.lan, wan_address = a.wan } },
  )]...)

  # Where to ask a DC over DNS: its first client, else its first server.
  dns_host = { for name, dc in local.datacenters :
  name => try(sort(keys(dc.clients))[0], "${name}-s1") }

  cli = "${var.testbed} --run-dir ${local.run_dir}"
}

output "datacenters" {
  description = "Per datacenter: its number, LAN, and host => address for servers, clients and gateways (gateways: lan and wan)."
  value       = local.datacenters
  depends_on  = [terraform_data.testbed]
}

output "hosts" {
  description = "Every host: datacenter, role, LAN address (HTTP :8500, DNS :8600) and, for gateways, WAN address."
  value       = local.hosts
  depends_on  = [terraform_data.testbed]
}

output "server_addresses" {
  description = "Per datacenter, its servers' addresses (for -retry-join and the like)."
  value       = { for name, dc in local.datacenters : name => [for host in sort(keys(dc.servers)) : dc.servers[host]] }
  depends_on  = [terraform_data.testbed]
}

output "run_dir" {
  description = "The testbed's run directory: state.json, topology.toml, hosts/<host>/agent.log."
  value       = terraform_data.testbed.output.run_dir
}

output "topology" {
  description = "The topology file given to `testbed up` (also <run_dir>/topology.toml)."
  value       = local.topology
}

output "commands" {
  description = "Handy commands (run them as root)."
  value = {
    status = "${local.cli} status"
    dig    = { for name, host in local.dns_host : name => "${local.cli} exec ${host} -- dig @127.0.0.1 -p 8600 consul.service.consul" }
    peers  = { for name, host in local.dns_host : name => "${local.cli} exec ${host} -- curl -s 127.0.0.1:8500/v1/status/peers" }
    logs   = "${local.cli} logs HOST"
    down   = "${local.cli} down"
  }
  depends_on = [terraform_data.testbed]
}
