"""The README's example runs as written against the test server (REALM_BASE_URL, REALM_API_KEY)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import KEY, Server

PKG = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (PKG / "README.md").read_text()
    section = text.split("## Example", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "no python block under ## Example"
    return m.group(1)


def test_readme_example_runs(server: Server) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 15
    env = {**os.environ, "REALM_BASE_URL": server.url, "REALM_API_KEY": KEY,
           "PYTHONPATH": str(PKG / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    answers = ast.literal_eval(lines[-1])
    assert isinstance(answers, list) and len(answers) == 3 and all(isinstance(x, str) for x in answers), r.stdout
    assert len(lines) >= 3 and lines[0].split()[-1].isdigit()  # the whole answer and its total_tokens
