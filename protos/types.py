"""Plain domain values shared by node, coordinator and client (no protobuf types here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Preference(enum.IntEnum):
    """A judge's verdict on one ordered pair; values equal the wire enum's."""

    A = 1
    B = 2
    TIE = 3


class Role(enum.IntEnum):
    """What a node does with its model; values equal the wire enum's. A reward model can only
    judge; a model behind a generation-only API can only answer."""

    GENERATE_AND_JUDGE = 0
    GENERATE_ONLY = 1
    JUDGE_ONLY = 2

    @property
    def generates(self) -> bool:
        return self != Role.JUDGE_ONLY

    @property
    def judges(self) -> bool:
        return self != Role.GENERATE_ONLY


ROLE_NAMES = {"both": Role.GENERATE_AND_JUDGE, "generate": Role.GENERATE_ONLY, "judge": Role.JUDGE_ONLY}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str = ""
    parameters: str = ""
    quantization: str = ""
    runtime: str = ""
    device: str = "cpu"
    chat: bool = True
    context_length: int = 0
    role: Role = Role.GENERATE_AND_JUDGE


# Progress events of a round, the same for the coordinator that emits them and the client that reads them.
@dataclass(frozen=True)
class Dispatched:
    round_id: str
    node_ids: tuple[str, ...]


@dataclass(frozen=True)
class JudgingProgress:
    done: int
    total: int
