# Three datacenters of three servers and a client each, one gateway per DC on the WAN.
# The gateways get their hosts (LAN + WAN addresses) but run nothing until a
# meridian-gateway binary exists; WAN links are emulated (`testbed wan show`).
agent {
  raft_multiplier = 1
}

datacenter "dc1" {
  servers  = 3
  clients  = 1
  gateways = 1
}

datacenter "dc2" {
  servers  = 3
  clients  = 1
  gateways = 1
}

datacenter "dc3" {
  servers  = 3
  clients  = 1
  gateways = 1
}

wan_link "dc1" "dc2" {
  delay = "20ms"
}

wan_link "dc1" "dc3" {
  delay        = "60ms"
  loss_percent = 0.5
}

wan_link "dc2" "dc3" {
  delay = "45ms"
}
