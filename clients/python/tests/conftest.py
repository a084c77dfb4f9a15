"""Test harness. With REALM_TEST_URL set (scripts/test-clients.sh), the tests use that running
realm-server, with the keys REALM_TEST_KEY, REALM_TEST_LIMITED_KEY and REALM_TEST_METRICS_KEY,
and leave it running. Without it, the harness starts the real realm-server binary on the real
model (loopback, a free port, a tenants file with SHA-256 keys: a `main` tenant, a `limited` one
with requests_per_minute = 2 and max_tokens = 64) and stops it by its PID. S6 always starts its
own. REALM_SERVER_BIN: the binary (default target/debug/realm-server); REALM_MODEL: the GGUF
(default SmolLM2 in the cache)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent / "src"))  # the package, without installing it
sys.path.insert(0, str(ROOT / "tests/harness"))  # shared with the server's own tests

import realm_harness  # noqa: E402
from realm_harness import free_port  # noqa: E402,F401  (the tests import it from here)

CACHE = Path(os.environ.get("REALM_CACHE_DIR", Path.home() / ".cache/realm"))
MODEL = Path(os.environ.get("REALM_MODEL", CACHE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
SERVER_BIN = Path(os.environ.get("REALM_SERVER_BIN", ROOT / "target/debug/realm-server"))

# A shared server's URL; unset: each run starts its own.
SHARED_URL = os.environ.get("REALM_TEST_URL", "").rstrip("/")
KEY = os.environ.get("REALM_TEST_KEY") or "client-test-key-0123456789"
LIMITED_KEY = os.environ.get("REALM_TEST_LIMITED_KEY") or "client-limited-key-abcdef"
METRICS_KEY = os.environ.get("REALM_TEST_METRICS_KEY") or "client-metrics-key"


Server = realm_harness.Server


class OwnServer(realm_harness.OwnServer):
    """A realm-server this harness starts with `args`, and stops (or kills) by its PID."""

    def __init__(self, args: list[str], log_name: str) -> None:
        super().__init__(SERVER_BIN, MODEL, args, log_name, METRICS_KEY)


@pytest.fixture(scope="session")
def tenants_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "tenants.toml"
    p.write_text(realm_harness.tenants_toml(KEY, LIMITED_KEY, requests_per_minute=2))
    return p


def server_args(tenants_file: Path) -> list[str]:
    return ["--config", str(tenants_file), "--metrics-key", METRICS_KEY, "--max-running", "8", "-c", "4096"]


@pytest.fixture(scope="session")
def server(tenants_file: Path) -> Iterator[Server]:
    if SHARED_URL:  # someone else's: used, never stopped
        yield Server(SHARED_URL, METRICS_KEY).wait_ready(timeout=10)
        return
    s = OwnServer(server_args(tenants_file), "realm-client-test")
    try:
        yield s.wait_ready()
    finally:
        code = s.stop()
        assert code == 0, f"realm-server exited with {code}: {s.logs()}"


@pytest.fixture
def client(server: Server) -> Iterator[Any]:
    from realm_client import Client

    with Client(server.url, api_key=KEY, timeout=60, max_retries=0) as c:
        yield c
