"""A node process for the swarm tests: it knows only a bootstrap address and a swarm key, and
replays correct answers to the arithmetic questions (so it passes calibration and answers rounds)
without a model. Prints 'swarmrank node ID listening on ADDRESS' like ``swarmrank node start``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from swarmrank.cli import logs
from swarmrank.bench.parent_death import die_with_parent_if_asked
from swarmrank.coordinator.calibration import ChallengeBank
from swarmrank.node.backends.replay import ReplayBackend
from swarmrank.node.daemon import serve
from swarmrank.node.settings import NodeSettings

QUESTIONS = ChallengeBank.arithmetic(size=10, seed=42).generation


def main() -> None:
    die_with_parent_if_asked()
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--key-path", type=Path, required=True)
    p.add_argument("--swarm-key", type=Path, required=True)
    p.add_argument("--bootstrap", action="append", default=[])
    p.add_argument("--announce-interval", type=float, default=5.0)
    args = p.parse_args()
    logs.configure("INFO", False)
    truth = {c.question: c.answer for c in [*ChallengeBank.arithmetic().generation, *QUESTIONS]}
    settings = NodeSettings(listen="127.0.0.1:0", key_path=args.key_path, model=args.name, bootstrap=args.bootstrap,
                            swarm_key=args.swarm_key, announce_interval=args.announce_interval)

    def ready(node_id: str, address: str) -> None:
        print(f"swarmrank node {node_id} listening on {address}", flush=True)

    asyncio.run(serve(settings, backend=ReplayBackend(truth, name=args.name), on_ready=ready))


if __name__ == "__main__":
    main()
