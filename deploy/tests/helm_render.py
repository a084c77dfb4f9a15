"""Lint and render the Helm chart with the Helm SDK (PyPI helm-python-sdk, Helm v4's Go code;
no `helm` binary is installable here): `helm lint --strict` and `helm template` for one values
file, the rendered manifests written to OUT as one multi-document YAML file.

    python helm_render.py CHART VALUES.yaml OUT.yaml [KIND ...]

VALUES.yaml "-" means the chart's defaults. Exits 1 when lint reports a warning or an error,
when a template fails, or when a KIND named on the command line is not rendered."""

import sys

import helm_python
import yaml


def main(chart: str, values_path: str, out: str, kinds: list[str]) -> int:
    values = {}
    if values_path != "-":
        with open(values_path) as f:
            values = yaml.safe_load(f) or {}
    report = helm_python.lint(chart, values, strict=True, namespace="realm")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
    for m in report["messages"]:
        print(f"  lint: severity {m['severity']} {m.get('path', '')}: {m['error']}")
    if problems:
        print(f"helm lint {chart} ({values_path}): {len(problems)} problem(s)", file=sys.stderr)
        return 1
    with helm_python.Chart.load(chart) as c:
        rendered = c.render(values, name="realm", namespace="realm", is_install=True)
    docs = []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(rendered[path]):
            if doc:
                docs.append(doc)
    with open(out, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    got = sorted(d["kind"] for d in docs)
    print(f"  rendered {len(docs)} manifests: {', '.join(got)}")
    missing = [k for k in kinds if k not in got]
    if missing:
        print(f"expected kinds not rendered: {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
