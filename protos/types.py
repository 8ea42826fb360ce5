"""Plain domain values shared by node, coordinator and client (no protobuf types here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Preference(enum.IntEnum):
    """A judge's verdict on one ordered pair; values equal the wire enum's."""

    A = 1
    B = 2
    TIE = 3


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
