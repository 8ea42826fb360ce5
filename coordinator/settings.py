"""Coordinator settings: flags, SWARMRANK_COORDINATOR_* environment variables, or a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from swarmrank.discovery.settings import DiscoverySettings

from swarmrank.kernels import DEFAULT_PRIOR

from .spot_checks import PROBATION_CHECKS, PROBATION_RATE


class CoordinatorSettings(DiscoverySettings):
    model_config = SettingsConfigDict(env_prefix="SWARMRANK_COORDINATOR_", extra="forbid")

    listen: str = "127.0.0.1:50051"
    db: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "swarmrank" / "coordinator.db")
    k: int = Field(5, ge=2, le=64, description="generators per round by default")
    max_k: int = Field(16, ge=2, le=64)
    min_quorum: int = Field(2, ge=2, description="candidates needed for a round to go on")
    default_max_tokens: int = Field(256, ge=1, le=4096)
    max_tokens_limit: int = Field(1024, ge=1, le=4096)
    system_prompt: str = "You are a helpful assistant. Answer the question correctly and concisely."
    generate_timeout: float = Field(120.0, gt=0, description="seconds each generator gets")
    judge_timeout: float = Field(120.0, gt=0, description="seconds each judge call gets")
    heartbeat_interval: float = Field(5.0, gt=0)
    exploration: float = Field(0.1, ge=0)
    judges_per_pair: int = Field(1, ge=1, le=16, description="judges that compare each pair (a panel when > 1)")
    prior: float = Field(DEFAULT_PRIOR, gt=0, description="Bradley-Terry prior strength (virtual comparisons)")
    seed: int | None = Field(None, description="seed of the dispatch/plan randomness (None: fresh)")
    key_path: Path = Field(default_factory=lambda: Path.home() / ".config" / "swarmrank" / "coordinator.key",
                           description="Ed25519 key that signs the ledger (created 0600 on first start)")
    calibration_bank: Path | None = Field(None, description="JSONL challenge bank (default: generated arithmetic)")
    calibration_generation: int = Field(4, ge=0, le=64, description="generation challenges at admission")
    calibration_pairwise: int = Field(2, ge=0, le=32, description="pairwise challenges at admission (each judged in both orders)")
    calibration_threshold: float = Field(0.5, ge=0, le=1, description="fraction of challenges a node must pass")
    calibration_timeout: float = Field(120.0, gt=0, description="seconds for each calibration call")
    refusal_cooldown: float = Field(600.0, ge=0, description="seconds a refused or quarantined key/address must wait")
    spot_check_rate: float = Field(0.05, ge=0, le=1, description="probability that a round is followed by a hidden spot "
                                   "check once every node's record is long enough (0: no spot checks at all)")
    probation_checks: int = Field(PROBATION_CHECKS, ge=0, le=100_000, description="ground-truth observations a node needs "
                                  "per role before spot checks drop from the probation rate to the spot-check rate")
    probation_rate: float = Field(PROBATION_RATE, ge=0, le=16, description="hidden spot checks per round while some "
                                  "eligible node's record is shorter than probation_checks (0: no probation budget)")
    log_level: str = "INFO"
    log_json: bool = False
    swarm: Path | None = Field(None, description="swarm directory (swarmrank swarm init): serve TLS with its CA, "
                               "mTLS for nodes, API keys for clients")
    node_listen: str = Field("", description="mTLS address where nodes register (with --swarm; default: the listen "
                             "host, port + 1)")
    node_cert_hours: float = Field(24.0, gt=0, le=24 * 365, description="lifetime of the node certificates it issues")
    insecure: bool = Field(False, description="allow plaintext on a non-loopback address (warns on every start)")
    top_judges: int = Field(4, ge=0, le=64, description="judges whose verdicts count in a round: the most reliable few (0: all)")
    spot_checks_in_order: bool = Field(False, description="a round returns only after the spot check it triggered "
                                                         "(with one round at a time and a seed, a run is replayable)")
    capacity_wait: float = Field(30.0, ge=0, description="seconds an ask waits for nodes with free capacity before UNAVAILABLE")
    round_retention_days: float = Field(0.0, ge=0, description="prune round transcripts older than this (hashes stay in the ledger); 0 keeps all")
    http_listen: str = Field("", description="host:port of the OpenAI-compatible HTTP API, /metrics and the dashboard (empty: off)")
    http_max_body_bytes: int = Field(1_000_000, ge=1024, le=64_000_000, description="largest HTTP request body accepted")
    metrics_listen: str = Field("", description="host:port of a Prometheus /metrics endpoint of its own (empty: off; /metrics is also on the HTTP port)")
    advertise: str = Field("", description="gRPC address announced to the swarm; default: the listen address")
    durability: Literal["full", "normal"] = Field(
        "normal", description="normal: no fsync per commit (a committed round survives a killed coordinator; an OS "
        "crash or power cut may lose the last rounds, never the ledger's consistency); full: fsync every commit")
