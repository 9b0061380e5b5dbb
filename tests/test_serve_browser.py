"""`narratives serve` in a real browser: headless Chromium against a real server on the demo."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from narratives.demo import run_demo

from conftest import ROOT, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium's own connections are refused on a closed
# network and it stalls; a fresh profile per run keeps runs independent.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "home": "/",
    "search": "/demo/article_overview?_search=dash+for+trash",
    "canned_query": "/demo/theme_index?theme=trump_trade&freq=W",
    "chart": "/-/narratives/chart?theme=trump_trade&freq=W",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed: apt-get install chromium to run this"
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`narratives serve` on a fresh demo corpus, as a subprocess on a free port."""
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "demo.db"
    run_demo(db, sample=ROOT / "corpus" / "sample", progress=False)
    with serving(db, tmp / "serve.log") as base:
        yield base


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.timeout(600)
def test_pages_render_in_chromium(server, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    dom = {}
    for name, path in PAGES.items():
        url = server + path
        png = shots / f"{name}.png"
        chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,1600", url)
        assert png.stat().st_size > 10_000, f"{name}: screenshot looks empty"
        dom[name] = chromium(tmp_path, "--dump-dom", url)
    assert "Start here" in dom["home"] and "/demo/article_overview" in dom["home"]
    assert 'rows where search matches "dash for trash"' in dom["search"]
    assert "The dash for trash is back on Wall Street" in dom["search"]
    assert "The narrative index of a theme" in dom["canned_query"]
    assert "<svg" in dom["canned_query"] and "2024-11-11" in dom["canned_query"]
    assert "<svg" in dom["chart"] and "Peaks" in dom["chart"]
    assert "Trump trade (weekly)" in dom["chart"]
