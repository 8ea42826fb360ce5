"""Regenerate the checked-in protobuf/gRPC code and its .pyi stubs (messages and services).

    python -m swarmrank.protos.generate          # rewrite protos/v1/*_pb2*.py(i)
    python -m swarmrank.protos.generate --check  # exit 1 if the checked-in code is stale

The .proto files are compiled under the import path ``swarmrank/protos/v1/`` so that generated
modules import each other as ``swarmrank.protos.v1.*``. Needs the ``dev`` extra (grpcio-tools 1.81,
whose gencode runs on protobuf 6 and 7 runtimes, and mypy-protobuf).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

V1_DIR = Path(__file__).resolve().parent / "v1"
IMPORT_PREFIX = Path("swarmrank/protos/v1")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate_into(out_dir: Path) -> list[Path]:
    """Compile every .proto in v1/ into ``out_dir``; return the generated files."""
    from grpc_tools import protoc  # dev-only dependency
    import grpc_tools

    with tempfile.TemporaryDirectory() as tmp:
        src_root, gen_root = Path(tmp) / "src", Path(tmp) / "gen"
        (src_root / IMPORT_PREFIX).mkdir(parents=True)
        gen_root.mkdir()
        protos = sorted(V1_DIR.glob("*.proto"))
        for proto in protos:
            shutil.copy(proto, src_root / IMPORT_PREFIX / proto.name)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        # The mypy plugin sits next to this interpreter, which need not be on PATH (.venv/bin/python).
        plugin, grpc_plugin = (shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
                               for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc"))
        if plugin is None or grpc_plugin is None:
            raise RuntimeError("protoc-gen-mypy not found: pip install mypy-protobuf (the dev extra)")
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={plugin}",
            f"--plugin=protoc-gen-mypy_grpc={grpc_plugin}",
            f"-I{src_root}",
            f"-I{well_known}",
            f"--python_out={gen_root}",
            f"--grpc_python_out={gen_root}",
            f"--mypy_out={gen_root}",
            f"--mypy_grpc_out={gen_root}",
            *[str(IMPORT_PREFIX / p.name) for p in protos],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for f in sorted((gen_root / IMPORT_PREFIX).iterdir()):
            if f.name.endswith(GENERATED_SUFFIXES):
                shutil.copy(f, out_dir / f.name)
                written.append(out_dir / f.name)
        return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when stale")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate_into(V1_DIR):
            print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate_into(Path(tmp))
        stale = [p.name for p in fresh if not (V1_DIR / p.name).exists() or not filecmp.cmp(p, V1_DIR / p.name, shallow=False)]
    if stale:
        print("stale generated code: " + ", ".join(stale) + " (run python -m swarmrank.protos.generate)")
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
