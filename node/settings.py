"""Node daemon settings: flags, SWARMRANK_NODE_* environment variables, or a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from swarmrank.discovery.settings import DiscoverySettings

from .registration import REGISTER_TIMEOUT


def _config_dir() -> Path:
    return Path.home() / ".config" / "swarmrank"


class NodeSettings(DiscoverySettings):
    model_config = SettingsConfigDict(env_prefix="SWARMRANK_NODE_", extra="forbid")

    backend: Literal["llama", "onnx", "openai", "instant"] = "llama"
    model: str = Field("smollm2-135m", description="catalogue name (llama), or the name to advertise")
    model_path: Path | None = Field(None, description="a GGUF or ONNX file instead of a catalogue model")
    upstream_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible server (backend=openai)")
    upstream_model: str = ""
    upstream_api_key: SecretStr = SecretStr("")
    role: Literal["", "both", "generate", "judge"] = Field(
        "", description="what this node does: both, generate (answers only) or judge (verdicts only); empty: the backend's own")
    listen: str = "127.0.0.1:50061"
    advertise: str = Field("", description="address the coordinator dials; default: the listen address")
    key_path: Path = Field(default_factory=lambda: _config_dir() / "node.key")
    coordinator: str = Field("", description="coordinator address to register with; empty: stand alone")
    max_queue: int = Field(8, ge=0, le=1024)
    max_concurrency: int = Field(4, ge=1, le=256, description="for backends that allow parallel calls (openai)")
    default_max_tokens: int = Field(256, ge=1, le=4096)
    max_tokens_limit: int = Field(1024, ge=1, le=4096)
    n_ctx: int = Field(2048, ge=256)
    n_threads: int = Field(0, ge=0, description="0: all cores")
    n_gpu_layers: int = Field(0, description="-1 offloads every layer when llama.cpp was built with GPU support")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cache_dir: Path | None = None
    grace_seconds: float = Field(10.0, ge=0, description="on SIGTERM: time in-flight work gets to finish")
    log_level: str = "INFO"
    log_json: bool = False
    seed: int = Field(0, description="backend=instant: the seed its answers derive from")
    join: SecretStr = Field(SecretStr(""), description="join token from 'swarmrank swarm invite' (first start; the "
                            "certificate is kept in --tls-dir and renewed)")
    tls_dir: Path | None = Field(None, description="the node's TLS key and swarm certificate (default: KEY_PATH.tls/, "
                                 "next to the node key, so each key has its own)")
    insecure: bool = Field(False, description="allow plaintext on a non-loopback address (warns on every start)")
    judge_mode: Literal["verdict", "likelihood"] = Field(
        "verdict", description="llama.cpp judging: score the verdict token of a judge prompt, or each answer's "
                               "likelihood given the question (no position to prefer; for small models)")
    metrics_listen: str = Field("", description="host:port of a Prometheus /metrics endpoint (empty: off)")
    register_timeout: float = Field(REGISTER_TIMEOUT, gt=0, le=86400, description="seconds one registration (the coordinator's "
                                    "calibration of this node included) may take; raise it on slow or loaded machines")
