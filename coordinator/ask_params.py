"""What a client may ask (pure): limits checked, defaults filled in from the settings."""

from __future__ import annotations

from swarmrank.protos import limits

from .domain import AskParams
from .errors import InvalidAsk
from .settings import CoordinatorSettings


def normalise(params: AskParams, settings: CoordinatorSettings) -> AskParams:
    """The ask with every default filled in; ``InvalidAsk`` names the first value out of range."""
    s = settings
    problem = limits.generation_problem(params.prompt, params.system, params.max_tokens, s.max_tokens_limit,
                                        params.temperature)
    if problem:
        raise InvalidAsk(problem)
    if params.k and not 2 <= params.k <= s.max_k:
        raise InvalidAsk(f"k must be 2..{s.max_k} (0 for the default {s.k}), got {params.k}")
    return AskParams(
        prompt=params.prompt,
        k=params.k or s.k,
        max_tokens=params.max_tokens or s.default_max_tokens,
        temperature=params.temperature,
        system=params.system or s.system_prompt,
    )
