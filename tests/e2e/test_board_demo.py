"""The board of ``cspulse run`` (a month of history, then live) in headless Chromium.

What a newcomer sees after ``scripts/run``: screenshots at a laptop's and a
TV's size, a plan and a window picked from the page's own links change the
numbers, every chart has a title, text contrast meets WCAG AA (4.5:1) as
computed from the page's stylesheet, the at-risk table links to account
pages, and ``cspulse status`` finds the stack through the env file.
``CSPULSE_SCREENSHOTS=docs`` saves the screenshots as ``docs/board-laptop.png``
and ``docs/board-tv.png`` (the README shows those).
Run: ``pytest tests/e2e/test_board_demo.py -s`` (skipped without ``chromium``).
"""

from __future__ import annotations

import html
import os
import re
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.demo.embedded import free_port, spawn
from tests.e2e.conftest import stop_group, tail, wait_for
from tests.e2e.test_board import browse, chromium

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SIZES = {"laptop": (1400, 900), "tv": (1920, 1080)}
WINDOW_SUFFIX = re.compile(r" [(]\w+[)]$")
WHOLE_BASE_PANELS = {"Customer health", "Dead letters", "Pipeline", "At-risk accounts"}


@dataclass
class Demo:
    port: int
    home: Path
    log: Path

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
            return str(r.read().decode())


def _caught_up(demo: Demo) -> bool:
    """The history is published and the worker applied (or dead-lettered) all of it."""
    found = re.search(r"history published: (\d+) events", demo.log.read_text(errors="replace"))
    if not found:
        return False
    metrics = demo.get("/metrics")
    seen = sum(
        float(v)
        for v in re.findall(r"^cs_events_(?:total|invalid_total)\{[^}]*\} (\S+)$", metrics, re.M)
    )
    return seen >= int(found[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    chromium()
    home = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPULSE_")}
    argv = [sys.executable, "-m", "streams", "run", "--metrics-port", str(port)]
    proc = spawn([*argv, "--env-file", ".cspulse.env"], home / "run.log", cwd=home, env=env)
    demo = Demo(port, home, home / "run.log")
    try:
        wait_for(lambda: proc.poll() is None and _caught_up(demo), 300, "the history applied", 3)
        yield demo
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{tail(demo.log)}") from exc
    finally:
        stop_group(proc)


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_screenshots_at_a_laptop_and_a_tv_size(demo: Demo, tmp_path: Path) -> None:
    binary = chromium()
    target = ROOT / "docs" if os.environ.get("CSPULSE_SCREENSHOTS") == "docs" else tmp_path
    for name, (width, height) in SIZES.items():
        window = "24h" if name == "laptop" else "30d"
        shot = target / f"board-{name}.png"
        _out, console = browse(
            binary, tmp_path / f"profile-{name}", f"http://127.0.0.1:{demo.port}/?window={window}",
            f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={shot}",
        )  # fmt: skip
        assert not console, console
        assert png_size(shot) == (width, height) and shot.stat().st_size > 50_000
        print(f"\nboard screenshot: {shot}")
    dom, console = browse(binary, tmp_path / "profile-dom", f"http://127.0.0.1:{demo.port}/",
                          "--dump-dom")  # fmt: skip
    assert not console and "no data yet" not in dom, re.findall(r"<title>[^<]*no data", dom)


def headlines(page: str) -> dict[str, str]:
    """Panel/title -> value of every headline number of the business panels."""
    out = {}
    for panel, body in re.findall(r'data-panel="([^"]+)">(.*?)</section>', page, re.S):
        if panel in WHOLE_BASE_PANELS:
            continue
        for value, title in re.findall(r"<b>([^<]*)</b><span>([^<]*)</span>", body):
            out[panel + "/" + WINDOW_SUFFIX.sub("", title)] = value
    return out


def test_a_plan_and_a_window_picked_from_the_page_change_the_numbers(demo: Demo) -> None:
    root = demo.get("/")
    links = dict(
        (label, html.unescape(href))
        for href, label in re.findall(r'<a href="([^"]+)"(?: class="on"[^>]*)?>([^<]+)</a>', root)
    )
    team = demo.get(links["team"])  # the plan link the page offers
    assert 'aria-current="page">team<' in team
    week = demo.get(
        html.unescape(re.findall(r'<a href="([^"]+)">7d</a>', team)[0])
    )  # then the window, plan kept
    assert 'aria-current="page">team<' in week and 'aria-current="page">7d<' in week
    before, after = headlines(root), headlines(week)
    assert set(before) == set(after) and len(before) >= 20
    changed = [k for k in before if before[k] != after[k]]
    for must in ("Revenue/MRR", "Revenue/Paying accounts", "Support/Tickets opened",
                 "Product usage/Sessions", "Product usage/Active users"):  # fmt: skip
        assert must in changed, (must, before[must], after[must])
    # most numbers move, and some in every panel; a few may not (no churn in either view)
    assert len(changed) >= 2 / 3 * len(before), sorted(set(before) - set(changed))
    panels = {key.split("/")[0] for key in before}
    assert panels == {key.split("/")[0] for key in changed}, sorted(set(before) - set(changed))


def relative_luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every rule that colours text: its own
    background if it sets one, else every surface text sits on (page and panels)."""
    palette = dict(re.findall(r"--([\w-]+):(#[0-9a-fA-F]{6})", css))
    pairs = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declared = dict(re.findall(r"([\w-]+):var\(--([\w-]+)\)", body))
        text = declared.get("color") or (declared.get("fill") if "text" in selector else None)
        if text is None:
            continue
        surfaces = [declared["background"]] if "background" in declared else ["bg", "panel"]
        pairs += [(selector.strip(), palette[text], palette[s]) for s in surfaces]
    return pairs


def test_every_chart_has_a_title_and_text_contrast_is_sufficient(demo: Demo) -> None:
    page = demo.get("/?window=7d")
    charts = re.findall(r"<svg [^>]*>(<title>[^<]*</title>)?", page)
    assert len(charts) == 7 and all(charts), charts  # six charts and the health bands
    assert all('role="img"' in svg for svg in re.findall(r"<svg [^>]*>", page))
    assert '<html lang="en">' in page and "<title>cspulse</title>" in page
    assert not re.search(r"<a [^>]*>\s*</a>", page)  # every link has words
    css = re.search(r"<style>(.*?)</style>", page, re.S)[1]  # type: ignore[index]
    pairs = text_pairs(css)
    assert len(pairs) >= 20, pairs
    low = [(s, fg, bg, round(contrast(fg, bg), 2)) for s, fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert not low, low


def test_at_risk_rows_link_to_account_pages(demo: Demo) -> None:
    page = demo.get("/?plan=team")
    section = re.search(r'data-panel="At-risk accounts">(.*?)</section>', page, re.S)[1]  # type: ignore[index]
    first = re.search(r'<td><a href="(/accounts/[^"]+)">([^<]+)</a>', section)
    assert first, section
    account = demo.get(html.unescape(first[1]))
    assert f"Health of {first[2]}" in account and "<dt>open tickets</dt>" in account
    assert 'href="/?plan=team"' in account  # back to the board as it was


def test_status_finds_the_demo_stack_through_the_env_file(demo: Demo) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPULSE_")}
    assert (demo.home / ".cspulse.env").exists()
    done = subprocess.run(
        [sys.executable, "-m", "streams", "status"],
        cwd=demo.home, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    assert len(re.findall(r"^cs\.(?:billing|logins|surveys|tickets) ", done.stdout, re.M)) == 16
    assert "total lag:" in done.stdout


def test_the_readme_history_count_is_the_measured_one(demo: Demo) -> None:
    published = int(re.search(r"history published: (\d+) events", demo.log.read_text())[1])  # type: ignore[index]
    print(f"\nhistory: {published} events")
    readme = (ROOT / "README.md").read_text()
    stated = re.search(
        r"about ([\d,]+) events\s+for the default 300 accounts,\s+([\d,]+) to ([\d,]+)", readme
    )
    assert stated, "the README states the history's size and its range"
    about, low, high = (int(n.replace(",", "")) for n in stated.groups())
    assert low <= about <= high
    assert low <= published <= high, "the start time (hour, weekday) moves the size in this range"
