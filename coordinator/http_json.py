"""JSON for the HTTP API: orjson when installed (several times faster on the answer's nested dicts),
the standard library otherwise, with the same compact, UTF-8 output either way."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the server extra installs orjson; the standard library still works without it
    orjson = None  # type: ignore[assignment]

JSONDecodeError = json.JSONDecodeError  # orjson's decode error is a subclass of it


def _plain(value: Any) -> Any:
    """What orjson cannot encode natively but the standard library could (``float``/``int`` subclasses)."""
    if hasattr(value, "item"):  # numpy scalars from the kernels
        return value.item()
    if isinstance(value, (float, int)):
        return float(value) if isinstance(value, float) else int(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON."""
    if orjson is not None:
        return orjson.dumps(obj, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_plain).encode()


def loads(data: bytes | bytearray) -> Any:
    """Parse a request body (``JSONDecodeError`` or ``UnicodeDecodeError`` when it is not JSON)."""
    return orjson.loads(data) if orjson is not None else json.loads(data)
