from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import BackgroundLoop, build_bigram_onnx  # noqa: E402


@pytest.fixture(scope="session")
def bigram_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bigram_onnx(tmp_path_factory.mktemp("onnx") / "bigram.onnx")


@pytest.fixture()
def bg() -> BackgroundLoop:
    loop = BackgroundLoop()
    yield loop
    loop.close()


def models_available() -> bool:
    try:
        import llama_cpp  # noqa: F401

        from swarmrank.node import catalogue

        for name in catalogue.CATALOGUE:
            catalogue.prepare(name)
    except Exception:
        return False
    return True


requires_models = pytest.mark.skipif(not models_available(), reason="needs the models extra (llama-cpp-python + GGUF packages)")
