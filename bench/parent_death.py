"""Children of a local launcher (the demo, a benchmark's process swarm) die with it.

The launcher puts its pid in ``PARENT_ENV``; the child, first thing, asks the Linux kernel for a
SIGTERM when that parent dies (PR_SET_PDEATHSIG), so a killed launcher leaves no daemon holding a
port or a model. The child does this itself rather than through a ``preexec_fn``: a preexec_fn
forces a plain fork() of a launcher whose gRPC threads are running, and gRPC's fork handlers can then
abort the child before it execs (seen as "epoll_wait error: Bad file descriptor", exit -6).
The kernel's "parent" is the thread that started the child: start children from the main thread or
from a pool thread that lives as long as they do (asyncio's default executor keeps its threads until
the loop shuts it down, after a ``ProcessSwarm`` has stopped its daemons).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "SWARMRANK_DIE_WITH_PARENT"


def child_env() -> dict[str, str]:
    """The environment variable a launcher gives its children."""
    return {PARENT_ENV: str(os.getpid())}


def die_with_parent_if_asked() -> None:
    """In a child a launcher started: SIGTERM when the launcher dies (Linux; elsewhere nothing)."""
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != int(parent):  # the launcher died before the line above
        sys.exit(0)
