"""Test harness. With REALM_TEST_URL set (scripts/test-clients.sh), the tests use that running
realm-server, with the keys REALM_TEST_KEY, REALM_TEST_LIMITED_KEY and REALM_TEST_METRICS_KEY,
and leave it running. Without it, the harness starts the real realm-server binary on the real
model (loopback, a free port, a tenants file with SHA-256 keys: a `main` tenant, a `limited` one
with requests_per_minute = 2 and max_tokens = 64) and stops it by its PID. S6 always starts its
own. REALM_SERVER_BIN: the binary (default target/debug/realm-server); REALM_MODEL: the GGUF
(default SmolLM2 in the cache)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # the package, without installing it

ROOT = HERE.parents[2]
CACHE = Path(os.environ.get("REALM_CACHE_DIR", Path.home() / ".cache/realm"))
MODEL = Path(os.environ.get("REALM_MODEL", CACHE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
SERVER_BIN = Path(os.environ.get("REALM_SERVER_BIN", ROOT / "target/debug/realm-server"))

# A shared server's URL; unset: each run starts its own.
SHARED_URL = os.environ.get("REALM_TEST_URL", "").rstrip("/")
KEY = os.environ.get("REALM_TEST_KEY") or "client-test-key-0123456789"
LIMITED_KEY = os.environ.get("REALM_TEST_LIMITED_KEY") or "client-limited-key-abcdef"
METRICS_KEY = os.environ.get("REALM_TEST_METRICS_KEY") or "client-metrics-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running realm-server at `url`: its health and metrics."""

    def __init__(self, url: str) -> None:
        self.url = url

    def wait_ready(self, timeout: float = 120) -> "Server":
        t0 = time.time()
        while time.time() - t0 < timeout:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"realm-server at {self.url} did not become ready: " + self.logs())

    def _check_alive(self) -> None:
        pass

    def logs(self) -> str:
        return "(a shared server: its log is with whoever started it)"

    def metrics(self) -> dict[str, float]:
        req = urllib.request.Request(self.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def running(self) -> float:
        return self.metrics().get("realm_num_requests_running", 0.0)

    def wait_running(self, pred: Any, timeout: float = 10) -> float:
        t0 = time.time()
        while True:
            n = self.running()
            if pred(n) or time.time() - t0 > timeout:
                return n
            time.sleep(0.05)


class OwnServer(Server):
    """A realm-server this harness starts, and stops (or kills) by its PID."""

    def __init__(self, args: list[str], log_name: str) -> None:
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.log = open(Path(tempfile.gettempdir()) / f"{log_name}-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [str(SERVER_BIN), "-m", str(MODEL), "--host", "127.0.0.1", "--port", str(self.port), "-t", "2", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"realm-server exited with {self.proc.returncode}: {self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def _sha(k: str) -> str:
    return hashlib.sha256(k.encode()).hexdigest()


@pytest.fixture(scope="session")
def tenants_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "tenants.toml"
    p.write_text(
        f"""
[[tenant]]
name = "main"
key_sha256 = ["{_sha(KEY)}"]

[[tenant]]
name = "limited"
key_sha256 = ["{_sha(LIMITED_KEY)}"]
requests_per_minute = 2
max_tokens = 64
"""
    )
    return p


def server_args(tenants_file: Path) -> list[str]:
    return ["--config", str(tenants_file), "--metrics-key", METRICS_KEY, "--max-running", "8", "-c", "4096"]


@pytest.fixture(scope="session")
def server(tenants_file: Path) -> Iterator[Server]:
    if SHARED_URL:  # someone else's: used, never stopped
        yield Server(SHARED_URL).wait_ready(timeout=10)
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
