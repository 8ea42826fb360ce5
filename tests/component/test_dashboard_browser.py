"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
live coordinator with replay nodes: rounds asked while the page is open appear through the
server-sent-events feed, with nodes, reputation charts, comparison graphs and the verified ledger.

``SWARMRANK_UPDATE_SCREENSHOT=1`` also writes the screenshot to docs/dashboard.png (the README's)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import BackgroundLoop, RunningCoordinator, RunningNode, coordinator_settings, wait_for
from swarmrank.node.backends.replay import ReplayBackend
from swarmrank.node.settings import NodeSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS = Path(__file__).resolve().parents[2] / "docs"

# Recorded-style answers: most nodes right, one model wrong on each question.
QUESTIONS = {
    "What is the capital of Australia?": ("Canberra", "Canberra", "Canberra", "Sydney"),
    "How many legs does a spider have?": ("8", "8", "6", "8"),
    "Which planet is known as the Red Planet?": ("Mars", "Mars", "Mars", "Jupiter"),
}
MODELS = ("llama-replay", "qwen-replay", "gemma-replay", "phi-replay")


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright")
    bg = BackgroundLoop()
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path, heartbeat_interval=0.5, seed=11, http_listen="127.0.0.1:0"))
    nodes = []
    for i, model in enumerate(MODELS):
        answers = {q: a[i] for q, a in QUESTIONS.items()}
        nodes.append(RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / f"n{i}.key", model=model,
                                                  coordinator=coord.address, max_queue=32),
                                 ReplayBackend(answers, name=model, template="The answer is {answer}.")))
    base = f"http://{coord.http_address}"
    wait_for(lambda: sum(n["status"] == "healthy" for n in httpx.get(base + "/api/nodes").json()) == len(MODELS), timeout=120)
    yield base
    for n in nodes:
        n.stop()
    coord.stop()
    bg.close()


def test_dashboard_shows_live_rounds_in_chromium(live: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    import openai

    client = openai.OpenAI(base_url=live + "/v1", api_key="unused", max_retries=0, timeout=60)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live) else None)
            page.goto(live + "/")
            expect(page.locator("#live")).to_have_text("live", timeout=60_000)  # the event stream is open
            expect(page.locator("#nodes tbody tr")).to_have_count(len(MODELS), timeout=60_000)
            asked = [client.chat.completions.create(model="swarm", messages=[{"role": "user", "content": q}])
                     for q in QUESTIONS]
            for reply in asked:  # each round arrives through server-sent events, newest first
                round_id = (reply.model_extra or {})["swarm"]["round_id"]
                expect(page.locator(f'[data-round="{round_id}"]')).to_be_visible(timeout=60_000)
            newest = page.locator(".round").first
            expect(newest.locator(".q")).to_have_text(list(QUESTIONS)[-1])
            expect(newest.locator(".a")).to_have_text("The answer is Mars.")
            verdicts = len((asked[-1].model_extra or {})["swarm"]["judgments"])
            expect(newest.locator(".graph svg path")).to_have_count(verdicts + len((asked[-1].model_extra or {})["swarm"]["judges"]))
            expect(page.locator("#ledger")).to_contain_text("ledger verified", timeout=60_000)
            expect(page.locator("#nodes tbody tr").first.locator("svg polyline")).to_have_count(2)
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            if os.environ.get("SWARMRANK_UPDATE_SCREENSHOT") == "1":
                DOCS.mkdir(exist_ok=True)
                shutil.copyfile(shot, DOCS / "dashboard.png")
            assert not errors, errors
            assert not outside, outside  # nothing fetched from anywhere but the coordinator
        finally:
            browser.close()
