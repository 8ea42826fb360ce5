"""The demo's child processes die with it (real processes; no model needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_demo_children_die_with_a_killed_demo(tmp_path) -> None:
    """A child the demo started asks the kernel for SIGTERM when the demo dies, even by SIGKILL,
    and is spawned without a fork-time hook (the demo's gRPC threads make those unsafe)."""
    import os
    import signal
    import time

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from swarmrank.cli.demo import Child\n"
        f"c = Child('coordinator', ['coordinator', 'start', '--listen', '127.0.0.1:0', '--db', r'{tmp_path / 'c.db'}',"
        f" '--key-path', r'{tmp_path / 'c.key'}'], Path(r'{tmp_path / 'c.log'}'))\n"
        "c.wait_ready(60)\n"
        "print(c.proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    demo = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        child = int(demo.stdout.readline())
        os.kill(child, 0)  # running
        demo.kill()
        demo.wait(10)
        deadline = time.monotonic() + 120  # an overall limit for a loaded machine
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(child, signal.SIGKILL)
        pytest.fail("the demo's child outlived the demo")
    finally:
        if demo.poll() is None:
            demo.kill()
