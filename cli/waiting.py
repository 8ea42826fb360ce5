"""Waiting for something that takes as long as the machine needs: as long as there is progress.

A fixed timeout is wrong both ways on a loaded machine: too short while real models calibrate on
two busy cores, too long when a process has hung. ``wait_while_progressing`` waits until ``done()``,
for as long as ``progress()`` keeps changing (CPU time burnt by the processes being waited for,
nodes that registered, ...): it gives up after ``stall`` seconds without any change, or after
``limit`` seconds in all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

POLL_SECONDS = 0.2


class Stalled(TimeoutError):
    """Nothing moved for too long (or the overall limit was reached)."""


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) the processes have used so far; 0 for those that are gone or where
    /proc is not available."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def work_done(pids: Iterable[int], quantum: float = 2.0) -> int:
    """CPU time used by ``pids`` in whole ``quantum``s: a process that computes moves this within
    seconds; one idling on heartbeats takes minutes to move it by one."""
    return int(cpu_seconds(pids) // quantum)


def wait_while_progressing(done: Callable[[], bool], progress: Callable[[], Hashable], *, what: str,
                           stall: float = 60.0, limit: float = 1800.0,
                           failed: Callable[[], str | None] = lambda: None) -> None:
    """Return once ``done()``; raise ``Stalled`` after ``stall`` seconds without a change of
    ``progress()`` or ``limit`` seconds in all, and RuntimeError as soon as ``failed()`` names a
    problem (a process that exited, say)."""
    started = last_change = time.monotonic()
    last = progress()
    while not done():
        problem = failed()
        if problem:
            raise RuntimeError(f"{what}: {problem}")
        now = time.monotonic()
        current = progress()
        if current != last:
            last, last_change = current, now
        if now - last_change > stall:
            raise Stalled(f"{what}: no progress for {stall:.0f}s")
        if now - started > limit:
            raise Stalled(f"{what}: not done after {limit:.0f}s")
        time.sleep(POLL_SECONDS)
