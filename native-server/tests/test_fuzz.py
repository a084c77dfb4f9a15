"""A schema fuzz of the server's own /openapi.json (schemathesis, generated from the wire types):
hundreds of generated requests per endpoint, valid and not, and never a 5xx. The fuzzed tenant
may generate at most 4 tokens per request, so the fuzz stays about the HTTP surface."""

import hashlib
import subprocess
import sys
from pathlib import Path

from conftest import Server

FUZZ_KEY = "fuzz-key-0001"


def test_openapi_schema_fuzz_gives_no_5xx(tmp_path):
    cfg = tmp_path / "fuzz.toml"
    cfg.write_text(
        f'[[tenant]]\nname = "fuzz"\nkey_sha256 = ["{hashlib.sha256(FUZZ_KEY.encode()).hexdigest()}"]\nmax_tokens = 4\n'
    )
    s = Server(["--config", str(cfg), "-c", "512"], "realm-server-fuzz")
    try:
        s.wait_ready()
        st = Path(sys.executable).parent / "schemathesis"
        r = subprocess.run(
            [str(st), "run", s.url + "/openapi.json", "--checks", "not_a_server_error",
             "-H", f"Authorization: Bearer {FUZZ_KEY}", "--max-examples", "40", "--workers", "1"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:] + s.logs()
        assert "passed" in r.stdout
    finally:
        assert s.stop() == 0, s.logs()
