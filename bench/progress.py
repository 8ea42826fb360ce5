"""What long commands print: a dependency-free progress bar for long steps (model assembly, waiting
for nodes, benchmark rounds) and a benchmark's final report."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


def report(result: dict[str, Any], table: str, as_json: bool) -> None:
    """A benchmark's result: the readable table on stdout, or with ``as_json`` one JSON object on
    stdout and the table on stderr (so pipes get clean JSON and people still see the table)."""
    if as_json:
        print(table, file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print(table)


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
