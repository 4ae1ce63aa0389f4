"""The driver report in a real browser: the distribution's headless Chromium.

`make test` installs Chromium and a Korean font (fonts-nanum) first. Where they are missing the
tests skip with the reason, except under CI, where a missing browser is a failure: a skipped
browser test must not pass for a tested report.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from vipml.report import locale, write_report

from . import test_report as _shared

# the report tests' module fixtures: the same generated retailer, bundle and report data
retailer, loaded, bundle, data = _shared.retailer, _shared.loaded, _shared.bundle, _shared.data

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECTIONS = (
    "headline",
    "drivers",
    "compare",
    "quality",
    "segments",
    "targets",
    "value",
    "monitor",
    "validation",
)
KOREAN_FONTS = ("nanum", "noto sans cjk", "noto sans kr", "malgun", "apple sd gothic", "unbatang")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (make test installs it)")
    pytest.skip(f"{reason} (run 'make browser' as root to install it)")


@pytest.fixture(scope="module")
def chromium():
    path = os.environ.get("VIPML_CHROMIUM") or shutil.which("chromium")
    if not path:
        _missing("Chromium is not installed")
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True).stdout.lower()
    if not any(name in fonts for name in KOREAN_FONTS):
        _missing("no Korean font is installed (fonts-nanum)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def opened(chromium, data, loaded, bundle, tmp_path_factory):
    """Each language's page (with the section on the list scored at the bundle's test cutoff,
    monitored), opened with the network cut off: what it logged and requested."""
    import dataclasses

    from vipml.monitor import monitor
    from vipml.report import read_monitor
    from vipml.score import score

    tables = loaded[0]
    cutoff = bundle.info["folds"]["test"][0]
    watched = tmp_path_factory.mktemp("monitor")
    monitor(score(tables, bundle, as_of=cutoff).targets, tables, bundle).write(watched)
    data = dataclasses.replace(data, monitor=read_monitor(watched))
    folder = tmp_path_factory.mktemp("pages")
    shots = os.environ.get("VIPML_SCREENSHOTS")
    out = {}
    for lang in ("en", "ko"):
        path = write_report(data, folder / f"report.{lang}.html", lang=lang)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        log = {"errors": [], "requests": []}
        page.on(
            "console",
            lambda m, log=log: (
                log["errors"].append(m.text) if m.type in ("error", "warning") else None
            ),
        )
        page.on("pageerror", lambda e, log=log: log["errors"].append(str(e)))

        def route(r, log=log):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                log["requests"].append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(path.as_uri(), wait_until="load")
        shot = folder / f"report.{lang}.png"
        page.screenshot(path=str(shot), full_page=True)
        if shots:
            os.makedirs(shots, exist_ok=True)
            shutil.copy(shot, os.path.join(shots, shot.name))
        out[lang] = (page, log, shot)
    yield out
    for page, _, _ in out.values():
        page.close()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_page_opens_with_no_error_and_no_request_out(opened, lang):
    _, log, shot = opened[lang]
    assert log["errors"] == []
    assert log["requests"] == []
    assert shot.stat().st_size > 50_000  # a full-page picture, not a blank one


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_key_sections_and_plots_are_shown(opened, lang):
    page, _, _ = opened[lang]
    words = locale(lang)
    for anchor in SECTIONS:
        heading = page.locator(f"#{anchor} h2")
        assert heading.is_visible()
        assert heading.inner_text() == words[f"{anchor}.title"]
    charts = page.locator("svg.chart")
    assert charts.count() >= 10
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100
    # lines are drawn inside the plots, not only axes
    assert page.locator("#quality svg.chart polyline").count() >= 6
    assert page.locator("#value svg.chart polyline").count() == 2  # expected and actual
    assert page.locator("#monitor svg.chart polyline").count() == 3  # reliability, value x2
    assert page.locator("#monitor .note, #monitor .warning").first.is_visible()
    assert page.locator("#drivers svg.chart rect.bar").count() >= 3
    # a navigation link reaches each section
    assert page.locator("nav a").count() >= len(SECTIONS)


def _fonts(page, selector: str) -> list[str]:
    """The platform fonts Chromium actually drew a node's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return [f["familyName"].lower() for f in fonts if f["glyphCount"] > 0]


@pytest.mark.parametrize("selector", ["header h1", "#headline h2", "#quality svg.chart text.axis"])
def test_korean_text_and_plot_labels_are_drawn_with_a_korean_font(opened, selector):
    page, _, _ = opened["ko"]
    fonts = _fonts(page, selector)
    assert fonts, selector
    assert any(k in f for f in fonts for k in KOREAN_FONTS), fonts


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_play_table_shows_driver_direction_and_why(opened, lang):
    page, _, _ = opened[lang]
    words = locale(lang)
    table = page.locator("#segments table.actions")
    assert table.is_visible()
    heads = [h.strip() for h in table.locator("th").all_inner_texts()]
    for col in ("segment", "driver", "direction", "channel", "play", "why"):
        assert words[f"actions.col.{col}"] in heads
    text = table.inner_text()
    assert words["driver_direction.lags"] in text
    # the reasons and plays are in the page's language, with every category filled in
    assert ("VIP 대비" if lang == "ko" else "lags the VIPs most") in text
    assert "{category}" not in page.content()
    left = page.locator("#targets").inner_text()
    assert words["left_out.negative_value"] in left
