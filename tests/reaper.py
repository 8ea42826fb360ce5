"""A pytest plugin that leaves no process behind: every process the tests start is registered by pid
and killed (with everything it started) when the fixture that started it fails, after the test
that started it, and at the end of the session.

Registration is automatic: ``subprocess.Popen`` is wrapped for the session, so daemons started by
fixtures, tests and helpers (``swarmrank.cli.demo.Child``) are all covered. A fixture's processes
belong to the fixture: a passing fixture's teardown stops them; if its set-up fails, the reaper
kills what that set-up started; a test's own processes are killed once it is over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

GRACE_SECONDS = 10.0


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet waited for, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _tree(pids: Iterable[int]) -> list[int]:
    """``pids`` and all their descendants, parents first (collected before anything is killed, so
    grandchildren are found while their parents still hold them)."""
    children = _children_of()
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop(0)
        if pid not in out:
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


class Reaper:
    def __init__(self) -> None:
        self._procs: dict[int, subprocess.Popen[Any]] = {}
        self._order: list[int] = []

    def register(self, proc: subprocess.Popen[Any]) -> None:
        self._procs[proc.pid] = proc
        self._order.append(proc.pid)

    def mark(self) -> int:
        """A point in time: ``kill_since(mark)`` kills what was registered after it."""
        return len(self._order)

    def kill_since(self, mark: int) -> list[int]:
        return self.kill(self._order[mark:])

    def kill_all(self) -> list[int]:
        return self.kill(self._order)

    def kill(self, pids: Iterable[int]) -> list[int]:
        """SIGTERM every live process of ``pids`` and its descendants, SIGKILL after a grace period.
        Returns the pids that were still running."""
        victims = [p for p in _tree(p for p in pids if alive(p)) if alive(p)]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + GRACE_SECONDS
            for pid in victims:
                proc = self._procs.get(pid)
                if proc is not None:  # our child: wait for it, so it does not stay a zombie
                    try:
                        proc.wait(max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
            if sig == signal.SIGTERM:
                while any(alive(p) for p in victims) and time.monotonic() < deadline:
                    time.sleep(0.05)  # polling a dying process (not waiting for something to run)
            if not any(alive(p) for p in victims):
                break
        return victims


REAPER = Reaper()
_Popen = subprocess.Popen


class _RegisteredPopen(_Popen):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        REAPER.register(self)


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen = _RegisteredPopen  # type: ignore[misc]


def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen = _Popen  # type: ignore[misc]
    left = REAPER.kill_all()
    if left:
        print(f"\nreaper: killed {len(left)} process(es) left running at the end of the session: {left}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    mark = REAPER.mark()
    try:
        return (yield)
    except BaseException:
        killed = REAPER.kill_since(mark)  # a failed fixture cannot stop what it started
        if killed:
            item.add_report_section("setup", "reaper", f"killed {killed} started by the failed set-up")
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_CALL_MARK] = REAPER.mark()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        mark = item.stash.get(_CALL_MARK, None)
        if mark is not None:
            REAPER.kill_since(mark)  # whatever the test itself started is over with it


_CALL_MARK = pytest.StashKey[int]()
