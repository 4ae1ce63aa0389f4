"""The report's expected-value and monitor sections (en/ko)."""

from __future__ import annotations

import dataclasses

import pytest

from vipml.errors import DataError
from vipml.report import locale, read_monitor, render_report

from . import test_report as _shared

retailer, loaded, bundle, data = _shared.retailer, _shared.loaded, _shared.bundle, _shared.data


@pytest.fixture(scope="module")
def monitored(loaded, bundle, tmp_path_factory):
    """A monitor folder for the list scored at the bundle's test cutoff."""
    from vipml.monitor import monitor
    from vipml.score import score

    tables = loaded[0]
    cutoff = bundle.info["folds"]["test"][0]
    result = monitor(score(tables, bundle, as_of=cutoff).targets, tables, bundle)
    folder = tmp_path_factory.mktemp("monitor")
    result.write(folder)
    return folder


def test_value_section_shows_test_deciles(data):
    assert data.value is not None and data.value["expected_spend"] > 0
    for lang in ("en", "ko"):
        page = render_report(data, lang=lang)
        words = locale(lang)
        assert '<section id="value">' in page
        assert words["value.title"] in page
        assert words["value.chart.test"] in page
        assert page.count('class="value"') >= 1  # the deciles table
    assert '<section id="monitor">' not in render_report(data, lang="en")


def test_monitor_section_with_reliability_chart_and_verdict(data, monitored):
    with_monitor = dataclasses.replace(data, monitor=read_monitor(monitored))
    for lang in ("en", "ko"):
        page = render_report(with_monitor, lang=lang)
        words = locale(lang)
        section = page.split('<section id="monitor">')[1].split("</section>")[0]
        assert words["monitor.chart.reliability"] in section
        assert words["monitor.chart.value"] in section
        assert with_monitor.monitor["summary"][f"verdict_{lang}"][:20] in section
        assert section.count('<svg class="chart"') == 2


def test_read_monitor_refuses_a_folder_without_its_summary(tmp_path):
    with pytest.raises(DataError, match="monitor.json"):
        read_monitor(tmp_path)
