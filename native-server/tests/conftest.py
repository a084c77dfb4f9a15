"""Starts the real realm-server binary on the real model (loopback, a free port) for the tests,
and stops it (by its PID) at the end. REALM_SERVER_BIN: the binary; REALM_CLI_BIN: the realm CLI
(for comparing answers with the library); REALM_MODEL: the GGUF (default: SmolLM2 in the cache)."""

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("REALM_CACHE_DIR", Path.home() / ".cache/realm"))
MODEL = Path(os.environ.get("REALM_MODEL", CACHE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
SERVER_BIN = Path(os.environ.get("REALM_SERVER_BIN", ROOT / "target/debug/realm-server"))
CLI_BIN = Path(os.environ.get("REALM_CLI_BIN", ROOT / "target/debug/realm"))

KEY = "test-key-0123456789"
LIMITED_KEY = "limited-key-abcdef"
METRICS_KEY = "metrics-key-xyz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args, log_name, model=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(tempfile.gettempdir()) / f"{log_name}-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [str(SERVER_BIN), "-m", str(model or MODEL), "--port", str(self.port), "-t", "2", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout=120):
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

    def stop(self, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def metrics(self) -> dict:
        req = urllib.request.Request(self.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out


@pytest.fixture(scope="session")
def tenants_file(tmp_path_factory):
    import hashlib

    h = lambda k: hashlib.sha256(k.encode()).hexdigest()
    p = tmp_path_factory.mktemp("cfg") / "tenants.toml"
    p.write_text(
        f"""
[[tenant]]
name = "main"
key_sha256 = ["{h(KEY)}"]

[[tenant]]
name = "limited"
key_sha256 = ["{h(LIMITED_KEY)}"]
requests_per_minute = 3
max_tokens = 64
"""
    )
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
