"""The session's reaper kills what a failed fixture started, before the next test runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reaper import alive

TESTS = Path(__file__).resolve().parents[1]

GENERATED = '''
import subprocess
import sys
from pathlib import Path

import pytest

PID_FILE = Path(__file__).with_name("pid")


@pytest.fixture()
def daemon():
    proc = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    PID_FILE.write_text(str(proc.pid))
    raise RuntimeError("the fixture fails after starting its daemon")
    yield proc


def test_uses_the_daemon(daemon):
    pass


def test_the_daemon_is_gone_already():
    pid = int(PID_FILE.read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX"
'''


def test_a_process_started_by_a_failing_fixture_is_killed(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["reaper"]\n')
    (tmp_path / "test_generated.py").write_text(GENERATED)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          "-c", "/dev/null", str(tmp_path)],
                         capture_output=True, text=True, timeout=1200, env={**_env(), "PYTHONPATH": str(TESTS),
                                                      # the reaper alone: no hypothesis, asyncio, anyio plugins to load
                                                      "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "1 passed, 1 error" in out.stdout, out.stdout + out.stderr
    assert "the fixture fails after starting its daemon" in out.stdout
    assert "killed [" in out.stdout  # the reaper says what it killed, in the failed set-up's report
    pid = int((tmp_path / "pid").read_text())
    assert not alive(pid)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
