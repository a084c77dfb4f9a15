"""What the Python test suites share about a realm-server process: the server's own tests
(native-server/tests) and the Python client's (clients/python/tests) import it from their
conftest.py. A server here is always the real binary on a real model, listening on loopback at
a free port, and stopped (or killed) by the PID this harness started; one someone else started
is used, never stopped."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenants_toml(main_key: str, limited_key: str, requests_per_minute: int) -> str:
    """A tenants file: `main` without limits, `limited` with a request rate and max_tokens 64."""
    return f"""
[[tenant]]
name = "main"
key_sha256 = ["{sha256(main_key)}"]

[[tenant]]
name = "limited"
key_sha256 = ["{sha256(limited_key)}"]
requests_per_minute = {requests_per_minute}
max_tokens = 64
"""


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition → {series (name and labels): value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class Server:
    """A running realm-server at `url`: its health and metrics (read with `metrics_key`)."""

    def __init__(self, url: str, metrics_key: str) -> None:
        self.url = url
        self.metrics_key = metrics_key

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
        req = urllib.request.Request(self.url + "/metrics", headers={"Authorization": f"Bearer {self.metrics_key}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return parse_metrics(r.read().decode())

    def running(self) -> float:
        return self.metrics().get("realm_num_requests_running", 0.0)

    def wait_running(self, pred: Callable[[float], bool], timeout: float = 10) -> float:
        t0 = time.time()
        while True:
            n = self.running()
            if pred(n) or time.time() - t0 > timeout:
                return n
            time.sleep(0.05)


class OwnServer(Server):
    """A realm-server this harness starts (`binary -m model`, 2 threads, `args`), on
    127.0.0.1 at a free port, its output in a log file named after `log_name`."""

    def __init__(self, binary: Path, model: Path, args: list[str], log_name: str, metrics_key: str) -> None:
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}", metrics_key)
        self.log = open(Path(tempfile.gettempdir()) / f"{log_name}-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port), "-t", "2", *args],
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

    def stop(self, timeout: float = 30) -> Any:
        """SIGTERM (the graceful drain), then SIGKILL after `timeout`; the exit code."""
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
