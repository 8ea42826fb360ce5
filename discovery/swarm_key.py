"""The swarm's pre-shared key in go-libp2p's PSK file format (``swarm.key``).

    /key/swarm/psk/1.0.0/
    /base16/
    <64 hex characters: 32 random bytes>

Only holders of the key can complete a libp2p connection to the swarm. The file must be 0600.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

HEADER = "/key/swarm/psk/1.0.0/"
ENCODING = "/base16/"
KEY_BYTES = 32
FILE_NAME = "swarm.key"


class SwarmKeyError(ValueError):
    """The swarm key file is missing, malformed or readable by others."""


@dataclass(frozen=True)
class SwarmKey:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise SwarmKeyError(f"a swarm key is {KEY_BYTES} bytes, got {len(self.key)}")

    @property
    def hex(self) -> str:
        return self.key.hex()

    @property
    def fingerprint(self) -> str:
        """Safe to log: a hash prefix, never the key."""
        import hashlib

        return hashlib.sha256(b"swarmrank/swarm-key\x00" + self.key).hexdigest()[:12]

    def encode(self) -> str:
        return f"{HEADER}\n{ENCODING}\n{self.key.hex()}\n"


def parse(text: str) -> SwarmKey:
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) != 3 or lines[0] != HEADER:
        raise SwarmKeyError(f"not a swarm key: expected three lines starting with {HEADER}")
    if lines[1] != ENCODING:
        raise SwarmKeyError(f"unsupported swarm key encoding {lines[1]!r} (only {ENCODING})")
    try:
        key = bytes.fromhex(lines[2])
    except ValueError:
        raise SwarmKeyError("the swarm key's third line is not hexadecimal") from None
    return SwarmKey(key)


def resolve(path: Path) -> Path:
    """A swarm directory means its ``swarm.key``; anything else is the key file itself."""
    path = Path(path).expanduser()
    return path / FILE_NAME if path.is_dir() else path


def load(path: Path) -> SwarmKey:
    path = resolve(path)
    if not path.is_file():
        raise SwarmKeyError(f"no swarm key at {path}")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SwarmKeyError(f"swarm key {path} is readable by others (mode {mode:o}); chmod 600 it")
    return parse(path.read_text(encoding="ascii", errors="replace"))


def create(path: Path) -> SwarmKey:
    """Write a fresh key (0600 from the first byte; never overwrites)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SwarmKey(secrets.token_bytes(KEY_BYTES))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.encode())
    return key
