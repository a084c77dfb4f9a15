"""realm-server's /metrics as Prometheus sees it: `promtool check metrics` lints the exposition,
and a real `prometheus` (on a free loopback port, a temp config and storage) scrapes the server
with the metrics key; its query API then has the request, token, time-to-first-token and
running-request series with the server's own values. Needs Debian's `prometheus` package
(`prometheus` and `promtool`), which scripts/setup.sh installs."""

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import openai
import pytest

from conftest import KEY, METRICS_KEY, MODEL, free_port

MODEL_ID = MODEL.stem
MSG = [{"role": "user", "content": "Name three colours."}]
JOB = "realm"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: scripts/setup.sh installs it "
            "(Debian's `prometheus` package, which has `prometheus` and `promtool`)"
        )
    return path


def metrics_text(server) -> str:
    req = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def chat(server, n=2, max_tokens=8):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    for _ in range(n):
        r = client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=max_tokens, temperature=0)
        assert r.usage.completion_tokens > 0


def test_promtool_check_metrics(server):
    chat(server)
    text = metrics_text(server)
    assert "realm_requests_total" in text
    r = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"promtool check metrics exited {r.returncode}:\n{r.stdout}{r.stderr}"


class Prometheus:
    def __init__(self, tmp_path, target_port: int):
        self.binary = tool("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp_path / "prometheus.yml"
        # JSON is YAML: no YAML library needed.
        self.config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "scrape_interval": "1s",
                            "scrape_timeout": "1s",
                            "metrics_path": "/metrics",
                            "authorization": {"credentials": METRICS_KEY},
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                },
                indent=2,
            )
        )
        self.storage = tmp_path / "tsdb"
        self.log = open(tmp_path / "prometheus.log", "w+")
        self.proc = None

    def check_config(self):
        r = subprocess.run(
            [tool("promtool"), "check", "config", str(self.config)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, f"promtool check config exited {r.returncode}:\n{r.stdout}{r.stderr}"

    def start(self):
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def api(self, path: str, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str):
        """The instant vector of `expr`, as [(labels, value)]."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def wait_up(self, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                targets = self.api("/api/v1/targets")["activeTargets"]
                last = targets
                if targets and all(t["health"] == "up" for t in targets):
                    return targets
            except OSError:
                pass  # not listening yet
            time.sleep(0.25)
        raise AssertionError(f"the scrape target was not up within {timeout} s: {last}\n{self.logs()}")


def one(results, what):
    assert len(results) == 1, f"{what}: expected one series, got {results}"
    return results[0]


def wait_value(prom, expr, want, timeout=10):
    """Polls until `expr` has the single value `want` (the next scrapes), returning it."""
    deadline = time.time() + timeout
    while True:
        labels, value = one(prom.query(expr), expr)
        if value == want or time.time() > deadline:
            return labels, value
        time.sleep(0.25)


def test_prometheus_scrapes_the_server(server, tmp_path):
    chat(server)
    prom = Prometheus(tmp_path, server.port)
    prom.check_config()
    try:
        prom.start()
        targets = prom.wait_up(30)
        target = one(targets, "active targets")
        assert target["labels"]["job"] == JOB
        assert target["labels"]["instance"] == f"127.0.0.1:{server.port}"
        assert target["lastError"] == ""

        _, up = one(prom.query(f'up{{job="{JOB}"}}'), "up")
        assert up == 1

        # The server's own values (nothing changes them between the scrape and this read).
        mine = server.metrics()
        ok = 'realm_requests_total{endpoint="chat_completions",status="200",tenant="main"}'
        gen = 'realm_generation_tokens_total{tenant="main"}'
        assert mine[ok] >= 2 and mine[gen] > 0

        labels, value = wait_value(prom, ok, mine[ok])
        assert value == mine[ok] and value >= 2
        assert labels["job"] == JOB and labels["instance"] == f"127.0.0.1:{server.port}"
        assert labels["endpoint"] == "chat_completions" and labels["status"] == "200" and labels["tenant"] == "main"

        _, value = wait_value(prom, gen, mine[gen])
        assert value == mine[gen] and value > 0

        ttft = "realm_time_to_first_token_seconds_count"
        _, value = wait_value(prom, ttft, mine[ttft])
        assert value == mine[ttft] and value >= 2

        _, value = wait_value(prom, "realm_num_requests_running", 0)
        assert value == 0

        # A request after the first scrapes shows up in the next ones.
        chat(server, n=1, max_tokens=4)
        after = server.metrics()
        assert after[ok] == mine[ok] + 1 and after[gen] > mine[gen]
        _, value = wait_value(prom, ok, after[ok])
        assert value == after[ok], f"{ok}: Prometheus has {value}, the server {after[ok]}"
        _, value = wait_value(prom, gen, after[gen])
        assert value == after[gen], f"{gen}: Prometheus has {value}, the server {after[gen]}"
        _, value = one(prom.query(f"increase({gen}[1m])"), "increase")
        assert value > 0
    except BaseException:
        print(prom.logs())
        raise
    finally:
        prom.stop()
    assert prom.proc.returncode == 0, f"prometheus exited with {prom.proc.returncode}:\n{prom.logs()}"
