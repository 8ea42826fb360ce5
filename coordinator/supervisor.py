"""Background work under structured concurrency: one TaskGroup owns every task, ``close`` ends them.

A task's failure is logged and does not touch its siblings or the caller (a failed spot check must not
fail the next client round). ``close`` cancels what is still running and waits for it, so nothing
outlives the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("swarmrank.coordinator")


class Supervisor:
    def __init__(self, name: str) -> None:
        self._name = name
        self._group: asyncio.TaskGroup | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._started = asyncio.Event()

    @property
    def busy(self) -> int:
        """How many tasks are running."""
        return len(self._running)

    async def _own(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._started.set()
            await self._stop.wait()
            for task in list(self._running):
                task.cancel()
        self._group = None

    async def spawn(self, coro: Coroutine[Any, Any, object], what: str) -> None:
        """Run ``coro`` in the group (started on first use); returns once it is scheduled."""
        if self._stop.is_set():
            coro.close()
            return
        if self._owner is None:
            self._owner = asyncio.get_running_loop().create_task(self._own(), name=self._name)
        await self._started.wait()
        assert self._group is not None

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:  # noqa: BLE001 - logged, never raised into the group
                log.info("%s did not complete: %s", what, exc)

        task = self._group.create_task(guarded(), name=what)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def wait(self) -> None:
        """Until every task running now (and any it spawns) has ended."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every running task and wait until all have ended."""
        self._stop.set()
        if self._owner is not None:
            await self._owner
