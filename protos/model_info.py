"""``ModelInfo`` on the wire: both daemons convert it (the node announces it, the coordinator lists it)."""

from __future__ import annotations

from swarmrank.protos.types import ModelInfo, Role
from swarmrank.protos.v1 import node_pb2 as pb


def model_info_to_pb(m: ModelInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=m.name, family=m.family, parameters=m.parameters, quantization=m.quantization,
        runtime=m.runtime, device=m.device, chat=m.chat, context_length=m.context_length, role=int(m.role),  # type: ignore[arg-type]
    )


def model_info_from_pb(m: pb.ModelInfo) -> ModelInfo:
    return ModelInfo(
        name=m.name, family=m.family, parameters=m.parameters, quantization=m.quantization,
        runtime=m.runtime, device=m.device, chat=m.chat, context_length=m.context_length,
        role=Role(m.role) if m.role in Role._value2member_map_ else Role.GENERATE_AND_JUDGE,
    )
