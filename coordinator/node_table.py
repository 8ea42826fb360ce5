"""The coordinator's node table: its schema and how a row maps to a ``NodeRecord`` and a ``Trust``.

Shared by the store (which writes the table) and the ledger's replay check (which reads it), so
neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from swarmrank.protos.types import ModelInfo, Role

from .domain import NodeRecord
from .trust import Topics, Trust

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    address TEXT NOT NULL,
    models TEXT NOT NULL,
    max_concurrency INTEGER NOT NULL,
    registered_unix REAL NOT NULL,
    last_seen_unix REAL NOT NULL,
    generator_score REAL NOT NULL,
    judge_score REAL NOT NULL,
    status TEXT NOT NULL,
    truths_passed INTEGER NOT NULL,
    trust_updated_unix REAL NOT NULL,
    generator_sum REAL NOT NULL,
    generator_n INTEGER NOT NULL,
    judge_sum REAL NOT NULL,
    judge_n INTEGER NOT NULL,
    rounds INTEGER NOT NULL DEFAULT 0,
    judge_biased INTEGER NOT NULL DEFAULT 0,
    judge_topics TEXT NOT NULL DEFAULT '[]',
    generator_topics TEXT NOT NULL DEFAULT '[]',
    judge_disputed_sum REAL NOT NULL DEFAULT 0,
    judge_disputed_n INTEGER NOT NULL DEFAULT 0
);
"""


TRUST_COLUMNS = ("generator_score, judge_score, status, truths_passed, trust_updated_unix, "
                 "generator_sum, generator_n, judge_sum, judge_n, judge_biased, judge_topics, generator_topics, "
                 "judge_disputed_sum, judge_disputed_n")


def trust_from_row(r: Sequence[Any]) -> Trust:
    """A Trust from the TRUST_COLUMNS of a node row."""
    return Trust(r[0], r[1], r[2], r[4], r[3], r[5], r[6], r[7], r[8], r[9], _topics_from_json(r[10]), _topics_from_json(r[11]),
                 r[12], r[13])


def _topics_from_json(stored: str | None) -> Topics:
    return tuple((str(name), float(total), int(n)) for name, total, n in json.loads(stored or "[]"))


def model_from_json(stored: dict[str, Any]) -> ModelInfo:
    return ModelInfo(**{**stored, "role": Role(stored.get("role", 0))})


def node_row(n: NodeRecord) -> tuple[Any, ...]:
    return (n.node_id, n.public_key, n.address, json.dumps([asdict(m) for m in n.models]), n.max_concurrency,
            n.registered_unix, n.last_seen_unix, n.trust.generator, n.trust.judge, n.trust.status,
            n.trust.truths_passed, n.trust.updated_unix, n.trust.generator_sum, n.trust.generator_n,
            n.trust.judge_sum, n.trust.judge_n, n.rounds, n.trust.judge_biased, json.dumps(n.trust.judge_topics),
            json.dumps(n.trust.generator_topics), n.trust.judge_disputed_sum, n.trust.judge_disputed_n)
