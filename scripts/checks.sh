#!/usr/bin/env bash
# Static checks: the import layers (lint-imports, [tool.importlinter]) and strict types (mypy,
# [tool.mypy]), both from .venv. Extra arguments go to mypy (e.g. a file to check alone).
#
# The code is imported as swarmrank.* through pyproject's package-dir mapping, which neither tool can
# follow through the editable install's import hook, so both read a tree that lays the packages out
# as they are imported: build/typecheck/swarmrank/<pkg>/..., real folders of links to the files.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
"$venv/bin/python" - <<'PY'
import os, shutil, tomllib
from pathlib import Path

root = Path("build/typecheck/swarmrank")
shutil.rmtree(root.parent, ignore_errors=True)
root.mkdir(parents=True)
(root / "__init__.py").write_text("")
mapping = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
for name, directory in mapping.items():
    source = Path(directory).resolve()
    for path in source.rglob("*"):
        if path.suffix in (".py", ".pyi", ".typed") and "__pycache__" not in path.parts:
            target = root / name.removeprefix("swarmrank.") / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
PY
PYTHONPATH=build/typecheck "$venv/bin/lint-imports"
"$venv/bin/python" -m mypy "$@"
