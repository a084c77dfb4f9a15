"""Test harness: starts the real realm-server binary on the real model (loopback, a free port,
a tenants file with SHA-256 keys) and stops it by its PID. REALM_SERVER_BIN: the binary
(default target/debug/realm-server); REALM_MODEL: the GGUF (default SmolLM2 in the cache)."""

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

KEY = "client-test-key-0123456789"
LIMITED_KEY = "client-limited-key-abcdef"
METRICS_KEY = "client-metrics-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, args: list[str], log_name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(tempfile.gettempdir()) / f"{log_name}-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [str(SERVER_BIN), "-m", str(MODEL), "--host", "127.0.0.1", "--port", str(self.port), "-t", "2", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120) -> "Server":
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"realm-server exited with {self.proc.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("realm-server did not become ready: " + self.logs())

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
    s = Server(server_args(tenants_file), "realm-client-test")
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
