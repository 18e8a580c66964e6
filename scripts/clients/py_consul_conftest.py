"""Stand-in for py-consul's root conftest.py, which starts Consul in Docker.

This one starts `meridian agent -dev` as a child process instead, with the exact agent
configuration py-consul's own conftest hands Consul (its CONSUL_LOCAL_CONFIG), written to a
JSON file and passed with `-config-file`, and the same command-line flags it passes Consul
(`agent -dev -log-level trace`; `-client` is 127.0.0.1 here, as tests talk to loopback only).
The fixtures keep py-consul's names and shapes so its tests run unchanged.

ACL-enabled instances get py-consul's ACL configuration unchanged too (`primary_datacenter`
and `acl { enabled, tokens { initial_management = <uuid4 hex> } }`, default policy allow).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])

# py-consul's base_config, unchanged (conftest.py, start_consul_container).
BASE_CONFIG = {
    "ports": {
        "https": -1,
        "dns": -1,
        "grpc_tls": -1,
    },
    "performance": {"raft_multiplier": 1},
    "enable_script_checks": True,
}

LOGS_DIR = os.path.join(os.path.dirname(__file__), "logs")
os.makedirs(LOGS_DIR, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _unset_consul_token():
    if "CONSUL_HTTP_TOKEN" in os.environ:
        del os.environ["CONSUL_HTTP_TOKEN"]


def _wait_ready(base_uri: str, proc: subprocess.Popen, deadline: float) -> None:
    # The same readiness checks as py-consul's conftest: a leader, then a registered
    # service visible in health.
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"meridian exited with {proc.returncode} before it was ready")
        if time.time() > deadline:
            raise TimeoutError("meridian was not ready within the deadline")
        try:
            r = requests.get(base_uri + "status/leader", timeout=2)
            if r.status_code == 200 and r.json():
                break
        except requests.RequestException:
            pass
        time.sleep(0.05)
    while time.time() < deadline:
        try:
            requests.put(base_uri + "agent/service/register", json={"name": "test-service"}, timeout=2)
            r = requests.get(base_uri + "health/service/test-service", timeout=2)
            if r.status_code == 200 and r.json():
                requests.put(base_uri + "agent/service/deregister/test-service", timeout=2)
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError("meridian did not show a registered service within the deadline")


def setup_and_teardown_meridian(request, acl_master_token: str | None = None):
    binary = os.environ["MERIDIAN_BIN"]
    config_doc = dict(BASE_CONFIG)
    env = dict(os.environ)
    if acl_master_token:
        # py-consul's acl_config, unchanged (conftest.py, start_consul_container).
        config_doc.update({
            "primary_datacenter": "dc1",
            "acl": {"enabled": True, "tokens": {"initial_management": acl_master_token}},
        })
    with tempfile.TemporaryDirectory(prefix="py-consul-") as tmp:
        config = os.path.join(tmp, "consul.json")
        with open(config, "w", encoding="utf-8") as f:
            json.dump(config_doc, f)
        port = 8500
        log_path = os.path.join(LOGS_DIR, f"{request.node.name}.log")
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [
                    binary, "agent", "-dev", "-client=127.0.0.1", "-log-level", "trace",
                    "-config-file", config,
                    # HTTP stays on 8500: some tests register checks against
                    # http://localhost:8500, the agent itself, as in Consul's container.
                    "-serf-lan-port", "0", "-server-port", "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                base_uri = f"http://127.0.0.1:{port}/v1/"
                _wait_ready(base_uri, proc, time.time() + 30)
                version = requests.get(base_uri + "agent/self", timeout=10).json()["Config"]["Version"].strip()
                instance = ConsulInstance(proc, port, version)
                yield instance if acl_master_token is None else (instance, acl_master_token)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def consul_instance(request):
    yield from setup_and_teardown_meridian(request)


@pytest.fixture
def acl_consul_instance(request):
    yield from setup_and_teardown_meridian(request, acl_master_token=uuid.uuid4().hex)


@pytest.fixture
def consul_port(consul_instance):
    return consul_instance.port, consul_instance.version
