"""A benchmark's process swarm dies with the benchmark, even when the benchmark is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import wait_for
from reaper import alive

LAUNCHER = """
import sys, signal
from pathlib import Path
from swarmrank.bench.process_swarm import start_coordinator
daemon = start_coordinator(Path(sys.argv[1]))
print(daemon.pid, flush=True)
signal.pause()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_killed_launcher_takes_its_coordinator_with_it(tmp_path: Path) -> None:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert launcher.stdout is not None
    coordinator = int(launcher.stdout.readline())  # printed once the coordinator listens
    assert alive(coordinator)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(30)
    try:
        wait_for(lambda: not alive(coordinator), timeout=120)
    finally:
        if alive(coordinator):
            os.kill(coordinator, signal.SIGKILL)
