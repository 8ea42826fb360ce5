#!/usr/bin/env bash
# Strict mypy over the whole tree (config: [tool.mypy] in pyproject.toml).
# The code is imported as swarmrank.* through pyproject's package-dir mapping, which mypy cannot
# follow through the editable install's import hook; it checks a tree of links that lays the
# packages out as they are imported (build/typecheck/swarmrank/<pkg> -> <dir>), plus tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" - <<'PY'
import os, shutil, tomllib
from pathlib import Path

root = Path("build/typecheck/swarmrank")
shutil.rmtree(root.parent, ignore_errors=True)
root.mkdir(parents=True)
(root / "__init__.py").write_text("")
mapping = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
for name, directory in mapping.items():
    link = root / name.removeprefix("swarmrank.")
    os.symlink(os.path.relpath(Path(directory).resolve(), link.parent), link)
PY
exec "$python" -m mypy "$@"
