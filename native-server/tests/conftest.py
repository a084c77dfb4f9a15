"""Starts the real realm-server binary on the real model (loopback, a free port) for the tests,
and stops it (by its PID) at the end (tests/harness/realm_harness.py, shared with the Python
client's tests). REALM_SERVER_BIN: the binary; REALM_CLI_BIN: the realm CLI (for comparing
answers with the library); REALM_MODEL: the GGUF (default: SmolLM2 in the cache)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/harness"))

import realm_harness  # noqa: E402
from realm_harness import free_port  # noqa: E402,F401  (the tests import it from here)

CACHE = Path(os.environ.get("REALM_CACHE_DIR", Path.home() / ".cache/realm"))
MODEL = Path(os.environ.get("REALM_MODEL", CACHE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
SERVER_BIN = Path(os.environ.get("REALM_SERVER_BIN", ROOT / "target/debug/realm-server"))
CLI_BIN = Path(os.environ.get("REALM_CLI_BIN", ROOT / "target/debug/realm"))

KEY = "test-key-0123456789"
LIMITED_KEY = "limited-key-abcdef"
METRICS_KEY = "metrics-key-xyz"


class Server(realm_harness.OwnServer):
    """realm-server with `args` on `model` (default MODEL), its metrics read with METRICS_KEY."""

    def __init__(self, args, log_name, model=None):
        super().__init__(SERVER_BIN, model or MODEL, args, log_name, METRICS_KEY)


@pytest.fixture(scope="session")
def tenants_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "tenants.toml"
    p.write_text(realm_harness.tenants_toml(KEY, LIMITED_KEY, requests_per_minute=3))
    return p


@pytest.fixture(scope="session")
def server(tenants_file):
    s = Server(
        ["--config", str(tenants_file), "--metrics-key", METRICS_KEY, "--max-running", "8", "-c", "4096"],
        "realm-server-test",
    )
    try:
        yield s.wait_ready()
    finally:
        code = s.stop()
        assert code == 0, f"realm-server exited with {code}: {s.logs()}"
