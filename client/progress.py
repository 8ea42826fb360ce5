"""A dependency-free progress bar for long steps (model assembly, waiting for nodes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, total: int, *, stream: TextIO = sys.stderr, unit: str = "MB", scale: float = 1e6) -> None:
        self.label, self.total, self.stream, self.unit, self.scale = label, max(total, 1), stream, unit, scale
        self._last = 0.0
        self._tty = stream.isatty()

    def __call__(self, done: int, total: int | None = None) -> None:
        if total:
            self.total = total
        now = time.monotonic()
        if done < self.total and now - self._last < (0.1 if self._tty else 2.0):
            return
        self._last = now
        width = 30
        filled = int(width * done / self.total)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done / self.scale:.0f}/{self.total / self.scale:.0f} {self.unit}"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
