# One testbed: `testbed up` when created, `testbed down --purge` when destroyed. Any change to
# the topology, the run directory or the binaries replaces it (down, then up again).

locals {
  topology = templatefile("${path.module}/topology.toml.tftpl", {
    raft_multiplier = var.raft_multiplier
    extra_args      = var.agent_extra_args
    datacenters     = var.datacenters
    wan_links       = var.wan_links
  })

  run_dir = trimsuffix(var.run_dir, "/")
}

resource "terraform_data" "testbed" {
  triggers_replace = {
    topology = local.topology
    run_dir  = local.run_dir
    testbed  = var.testbed
    meridian = var.meridian
  }

  lifecycle {
    precondition {
      condition     = !strcontains(var.testbed, "/") || fileexists(var.testbed)
      error_message = "No testbed binary at ${var.testbed}: build it first (cargo build --bin meridian --bin testbed)."
    }
    precondition {
      condition     = var.meridian == null || !strcontains(coalesce(var.meridian, "-"), "/") || fileexists(coalesce(var.meridian, "-"))
      error_message = "No meridian binary at ${coalesce(var.meridian, "-")}: build it first (cargo build --bin meridian --bin testbed)."
    }
  }

  # What the destroy-time provisioner needs: it can only read `self`.
  input = {
    run_dir = local.run_dir
    testbed = var.testbed
  }

  # Refuses a run directory that holds a live testbed before writing anything into it. The
  # marker written after a successful `up` ties the run to this resource: destroy takes down
  # only a run this resource made, never one started by hand in the same directory since.
  # If `up` fails it removes what it made and keeps the logs; terraform marks the resource
  # tainted and runs no destroy provisioner for it, so the next apply simply tries again.
  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -eu
      if [ -e "$RUN_DIR/state.json" ]; then
        echo "terraform: a testbed is already up in $RUN_DIR; take it down first: $TESTBED --run-dir $RUN_DIR down" >&2
        exit 1
      fi
      mkdir -p "$RUN_DIR"
      printf '%s\n' "$TOPOLOGY" > "$RUN_DIR/topology.toml"
      if ! "$TESTBED" --run-dir "$RUN_DIR" up "$RUN_DIR/topology.toml" $${MERIDIAN:+--meridian "$MERIDIAN"} --timeout "$UP_TIMEOUT"; then
        echo "terraform: testbed up failed; agent logs: $RUN_DIR/hosts/*/agent.log" >&2
        exit 1
      fi
      printf '%s\n' "$OWNER" > "$RUN_DIR/terraform-owner"
    EOT
    environment = {
      RUN_DIR    = local.run_dir
      TESTBED    = var.testbed
      MERIDIAN   = var.meridian == null ? "" : var.meridian
      TOPOLOGY   = local.topology
      OWNER      = self.id
      UP_TIMEOUT = var.up_timeout
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -eu
      if [ "$(cat "$RUN_DIR/terraform-owner" 2>/dev/null || true)" = "$OWNER" ]; then
        "$TESTBED" --run-dir "$RUN_DIR" down --purge
      else
        echo "terraform: no testbed of this resource in $RUN_DIR (already down, or never came up); nothing to remove"
      fi
    EOT
    environment = {
      RUN_DIR = self.input.run_dir
      TESTBED = self.input.testbed
      OWNER   = self.id
    }
  }
}
