"""The command line's help, settings precedence, node keys and the ONNX GPU path: no network."""

from __future__ import annotations

import pytest

from swarmrank.cli.config import load_settings
from swarmrank.cli.main import main
from swarmrank.node.backends.onnx import OnnxBackend
from swarmrank.node.settings import NodeSettings
from swarmrank.protos.signing import Identity


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_node:
        main(["node", "start", "--help"])
    out = capsys.readouterr().out
    assert exit_node.value.code == 0 and "--model" in out and "--max-queue" in out and "--coordinator" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "node", "coordinator", "ask", "nodes", "round", "bench"):
        assert command in out


def test_settings_precedence(tmp_path, monkeypatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text('model = "gemma3-270m"\nmax_queue = 3\nlisten = "127.0.0.1:7000"\n')
    monkeypatch.setenv("SWARMRANK_NODE_MAX_QUEUE", "5")
    s = load_settings(NodeSettings, config, {"listen": "127.0.0.1:9000", "model": None})
    assert (s.model, s.max_queue, s.listen) == ("gemma3-270m", 5, "127.0.0.1:9000")  # file < env < flag
    with pytest.raises(FileNotFoundError):
        load_settings(NodeSettings, tmp_path / "missing.toml", {})
    with pytest.raises(ValueError):
        load_settings(NodeSettings, None, {"max_queue": "-1"})


def test_key_file_is_private_and_stable(tmp_path) -> None:
    path = tmp_path / "keys" / "node.key"
    a = Identity.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Identity.load_or_create(path).node_id == a.node_id
    assert "PRIVATE" not in repr(a) and a.node_id in repr(a)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        Identity.load_or_create(path)


def test_onnx_gpu_path(bigram_onnx) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("no CUDA execution provider (onnxruntime-gpu on a GPU machine)")
    backend = OnnxBackend(bigram_onnx, device="cuda")
    assert backend.info.device == "cuda" and backend.providers[0] == "CUDAExecutionProvider"
    from swarmrank.node.backends.base import GenerationParams

    assert list(backend.stream(GenerationParams("The capital", max_tokens=5), lambda: False))[-1].completion_tokens == 5


def test_register_timeout_is_a_node_flag() -> None:
    from swarmrank.cli.main import _settings_from, build_parser
    from swarmrank.node.registration import REGISTER_TIMEOUT

    args = build_parser().parse_args(["node", "start", "--register-timeout", "7200"])
    assert _settings_from(args, NodeSettings).register_timeout == 7200.0
    assert NodeSettings().register_timeout == REGISTER_TIMEOUT
    with pytest.raises(ValueError):
        NodeSettings(register_timeout=0)
