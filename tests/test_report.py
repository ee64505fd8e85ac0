"""The HTML report: sections, numbers traced to the results, escaping, embedded charts."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from _synthetic import EVIL, make_results, porto_alegre_results
from careblocks.outputs import write_report
from careblocks.outputs.report import before_after, coverage_by_group


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2: list[str] = []
        self.imgs: list[str] = []
        self.scripts = 0
        self.external: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        elif tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag == "script":
            self.scripts += 1
        if tag in ("link", "script", "img") and re.match(r"https?://", a.get("src", a.get("href", "")) or ""):
            self.external.append(a.get("src") or a.get("href"))

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def _parse(text: str) -> _Collect:
    p = _Collect()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    r = make_results()
    path = write_report(r, tmp_path_factory.mktemp("rep") / "report.html")
    return r, path.read_text(encoding="utf-8")


def test_sections_and_embedded_charts(full):
    r, text = full
    p = _parse(text)
    for h in ("Summary", "Study area and data used", "Who is underserved", "Proposed Care Blocks",
              "Before and after", "Charts", "Method and assumptions", "Data sources and licences"):
        assert h in p.h2, h
    assert p.scripts == 0 and p.external == []
    assert len(p.imgs) == 3  # site map, times by service, shares by group
    for src in p.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "OpenStreetMap contributors" in text and "ODbL" in text
    assert "PDF" in text  # says why there is none and what to do


def test_numbers_come_from_the_results(full):
    r, text = full
    cov = coverage_by_group(r)
    eq = r.equity
    want = eq[(eq["service"] == "health") & (eq["group"] == "children_under5")
              & (eq["district"] == "all") & (eq["threshold_min"] == 15.0)]["share_within"].item()
    assert cov.loc["Children under 5", "Health"] == pytest.approx(want)
    assert f"{100 * want:.0f}%" in text
    ba = before_after(r)
    row = ba[(ba["group"] == "Everyone") & (ba["service"] == "Daycare")].iloc[0]
    assert row["change"] == pytest.approx(row["with Care Blocks"] - row["today"]) and row["change"] >= 0
    # every selected site's rationale is in the report, escaped
    for rationale in r.selected["rationale"]:
        assert rationale.replace("&", "&amp;") in text
    assert f"{len(r.candidates):,} candidate sites" in text
    # districts by name, escaped
    assert "West &lt;b&gt;side&lt;/b&gt;" in text and "<b>side</b>" not in text


def test_data_text_escaped(tmp_path):
    r = make_results()
    r.selected.loc[0, "rationale"] = EVIL
    text = write_report(r, tmp_path / "r.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_method_reflects_the_config(tmp_path):
    r = make_results(with_sites=False)
    r.config = dataclasses.replace(
        r.config, walk=dataclasses.replace(r.config.walk, speed_kmh=3.6, profiles={"older": 3.0})
    )
    text = write_report(r, tmp_path / "r.html").read_text()
    assert "Walking speed 3.6 km/h" in text and "older adult 3 km/h" in text or "older 3 km/h" in text
    assert "Daycare 10" in text  # trips per week from the default service presets
    assert "Proposed Care Blocks" not in text and "Before and after" not in text


def test_without_equity_falls_back_to_origins(tmp_path):
    r = make_results(with_sites=False)
    r.equity = None
    cov = coverage_by_group(r)
    o = r.origins
    t = o["walk_min_laundromat"].fillna(np.inf) <= 15
    want = o.loc[t, "population"].sum() / o["population"].sum()
    assert cov.loc["Everyone", "Laundromat"] == pytest.approx(want)
    assert "Who is underserved" in write_report(r, tmp_path / "r.html").read_text()


def test_porto_alegre_report(data, tmp_path):
    r = porto_alegre_results(data)
    text = write_report(r, tmp_path / "poa.html").read_text()
    pop = r.origins["population"]
    within = pop[r.origins["walk_min_health"].fillna(np.inf) <= 15].sum() / pop.sum()
    assert 0 < within < 1
    assert f"<b>{100 * within:.0f}%</b>within 15 min of health" in text
    assert f"{pop.sum():,.0f}" in text


def test_pipeline_equity_layout_scenario_and_mode(tmp_path):
    """The pipeline's layout: one equity table with ``scenario`` and ``mode`` columns."""
    r = make_results()
    cur = r.equity.assign(scenario="current", mode="walk")
    slow = r.equity.assign(scenario="current", mode="walk_stroller",
                           share_within=r.equity["share_within"] * 0.5)
    after = r.equity_after.assign(scenario="with_sites", mode="walk")
    r.equity = pd.concat([slow, cur, after], ignore_index=True)
    r.equity_after = None
    ba = before_after(r)
    row = ba[(ba["group"] == "Everyone") & (ba["service"] == "Health")].iloc[0]
    eq = r.equity
    pick = eq[(eq["service"] == "health") & (eq["group"] == "population") & (eq["district"] == "all")
              & (eq["threshold_min"] == 15.0)].set_index(["scenario", "mode"])["share_within"]
    assert row["today"] == pytest.approx(pick[("current", "walk")])
    assert row["with Care Blocks"] == pytest.approx(pick[("with_sites", "walk")])
    assert "Before and after" in write_report(r, tmp_path / "r.html").read_text()
