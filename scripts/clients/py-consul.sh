#!/usr/bin/env bash
# Runs the test suite of py-consul, a well-known Consul client that nobody here wrote, against
# `meridian agent -dev` started with py-consul's own agent configuration (see
# py_consul_conftest.py). The suite comes unchanged from py-consul's source package on PyPI;
# only its Docker-starting conftest.py is replaced. Skipped, and why:
#   - ACL tests that need what Meridian lacks: auth methods, binding rules, login and logout.
#     The other ACL tests (templated policies included) run, with py-consul's ACL
#     configuration (the ACL issue, #17);
#   - Connect: tests/api/test_connect.py and test_discovery_chain.py, the sidecar registration
#     in test_agent.py and the ingress-gateway services in test_catalog.py. Meridian has no
#     Connect (its endpoints answer as Consul's do with Connect off, and those tests run).
#
# Usage: scripts/clients/py-consul.sh [pytest args...]   (MERIDIAN_BIN: the binary to test,
# default target/debug/meridian, built first)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

PY_CONSUL_VERSION=1.8.0
work=$root/target/clients/py-consul-$PY_CONSUL_VERSION
if [[ -z ${MERIDIAN_BIN:-} ]]; then
  # A no-op when current; the suite never runs a stale binary.
  cargo build -q -p meridian-agent --bin meridian
  MERIDIAN_BIN=$root/target/debug/meridian
fi
export MERIDIAN_BIN

if [[ ! -f $work/.ready ]]; then
  echo "==> py-consul $PY_CONSUL_VERSION: source package and test dependencies from PyPI"
  rm -rf "$work" && mkdir -p "$work"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q --disable-pip-version-check \
    pytest==8.3.5 pytest-asyncio==0.26.0 aiohttp==3.11.18 requests packaging
  "$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$work/dl" "py-consul==$PY_CONSUL_VERSION"
  tar -xzf "$work/dl/py_consul-$PY_CONSUL_VERSION.tar.gz" -C "$work"
  "$work/venv/bin/pip" install -q --disable-pip-version-check --no-deps \
    "$work/py_consul-$PY_CONSUL_VERSION"
  touch "$work/.ready"
fi

src=$work/py_consul-$PY_CONSUL_VERSION
# Tests talk to the agent on 127.0.0.1:8500 (as to Consul in its container): one run at a time.
exec 9>"$work/.lock"
flock 9
if (exec 3<>/dev/tcp/127.0.0.1/8500) 2>/dev/null; then
  echo "error: something already listens on 127.0.0.1:8500; py-consul's tests need that port" \
    "for the agent they start (stop the other agent first)" >&2
  exit 1
fi
cp "${PY_CONSUL_CONFTEST:-$root/scripts/clients/py_consul_conftest.py}" "$src/conftest.py"
cd "$src"
echo "==> py-consul $PY_CONSUL_VERSION test suite against $MERIDIAN_BIN"
# pyproject.toml's addopts want pytest-cov; -o clears them. asyncio_mode=auto is kept.
exec "$work/venv/bin/python" -m pytest -o addopts="" -p no:cacheprovider -q \
  --ignore=tests/api/test_connect.py --ignore=tests/api/test_discovery_chain.py \
  --deselect tests/api/test_agent.py::TestAgent::test_agent_service_connect \
  --deselect tests/api/test_catalog.py::TestCatalog::test_catalog_gateway_services \
  --deselect tests/api/test_acl.py::TestConsulAcl::test_acl_login_unknown_auth_method \
  --deselect tests/api/test_acl.py::TestConsulAcl::test_acl_logout_invalid_token \
  --deselect tests/api/test_acl.py::TestConsulAcl::test_acl_auth_method_crud \
  --deselect tests/api/test_acl.py::TestConsulAcl::test_acl_binding_rule_crud \
  "$@" tests
