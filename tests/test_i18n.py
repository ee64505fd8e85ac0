"""Languages: complete catalogues, locale formats, and pages with no English left in them."""

from __future__ import annotations

import dataclasses
import io
import re
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from _i18n_check import english_fragments, untranslated, visible_text
from _synthetic import make_results
from careblocks.config import load_config
from careblocks.i18n import LANGUAGES, catalogue_path, language

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def _with_language(results, lang: str):
    cfg = results.config
    results.config = dataclasses.replace(cfg, outputs=dataclasses.replace(cfg.outputs, language=lang))
    return results


@pytest.mark.parametrize("lang", [x for x in LANGUAGES if x != "en"])
def test_catalogue_has_every_id_of_the_source_translated(lang):
    from update_catalogues import extract

    source = {m.id for m in extract() if m.id}
    with catalogue_path(lang).open("rb") as f:
        cat = read_po(f, locale=lang)
    ids = {m.id for m in cat if m.id}
    assert source - ids == set(), "run scripts/update_catalogues.py"
    assert ids - source == set(), "run scripts/update_catalogues.py"
    for m in cat:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(strings), f"{lang}: {m.id!r} has no translation"
        assert not m.fuzzy, f"{lang}: {m.id!r} is fuzzy"
        # the same placeholders, so .format() cannot fail or drop a number
        want = set(re.findall(r"\{\w*\}", m.id if isinstance(m.id, str) else m.id[1]))
        for s in strings:
            assert set(re.findall(r"\{\w*\}", s)) == want, (lang, m.id, s)


def test_numbers_and_dates_follow_the_language():
    es, pt, fr, en = (language(x) for x in ("es", "pt", "fr", "en"))
    assert en.integer(176000) == "176,000" and es.integer(176000) == "176.000"
    assert pt.number(10.94, 1) == "10,9" and fr.integer(176000).replace("\u202f", " ") == "176 000"
    assert en.percent(0.613) == "61%" and es.percent(0.613).replace("\xa0", " ") == "61 %"
    assert es.date("2026-11-30") == "30 de noviembre de 2026"
    assert pt.date("2026-11-30") == "30 de novembro de 2026"
    assert en.rounded(18_449) == "18,400" and es.rounded(250_600) == "251.000"
    assert en.smart(1.49e-07) == "0" and en.smart(0.1234) == "0.12" and en.smart(1234.5) == "1,234"
    assert es._("Proposed Care Blocks") == "Manzanas del Cuidado propuestas"


def test_config_language_is_checked_and_shipped_configs_use_their_city_language():
    from careblocks.config import config_from_dict
    from careblocks.errors import ConfigError

    with pytest.raises(ConfigError, match="outputs.language"):
        config_from_dict({"outputs": {"language": "de"}})
    want = {"bogota_fontibon": "es", "porto_alegre": "pt", "sao_paulo": "pt",
            "freetown_cbd": "en", "helsinki": "en"}
    for name, lang in want.items():
        assert load_config(ROOT / "configs" / f"{name}.toml").outputs.language == lang, name


@pytest.mark.parametrize("lang", ["es", "pt", "fr"])
def test_report_has_no_english_left(lang, tmp_path):
    from careblocks.outputs.report import build_report

    r = _with_language(make_results(), lang)
    page = build_report(r)
    assert f'<html lang="{lang}">' in page
    text = visible_text(page)
    names = tuple(str(v) for v in r.selected["name"]) + tuple(str(v) for v in r.services["name"].dropna())
    names += tuple(r.selected["rationale"])  # written by the fixture, not by careblocks
    names += ("Synthetic town", "West <b>side</b>", "synthetic.pbf", "ODbL", "OpenStreetMap")
    left = untranslated(text, lang, data_names=names)
    if lang == "fr":  # French shares words with English ("score", "site", "service")
        left = [x for x in left if " " in x]
    assert left == []
    # the rationale and labels are in the language too
    assert language(lang)._("Proposed Care Blocks") in text


def test_the_scan_finds_english(tmp_path):
    """The check itself: an English report scanned as Spanish fails."""
    from careblocks.outputs.report import build_report

    text = visible_text(build_report(make_results()))
    left = untranslated(text, "es")
    assert "Who is underserved" in left and "the" in left
    assert len(english_fragments("es")) > 50


def test_summary_in_portuguese():
    from rich.console import Console

    from careblocks.summary import print_summary

    r = _with_language(make_results(), "pt")
    r.metadata["warnings"] = ["x: y"]
    buf = io.StringIO()
    print_summary(Console(file=buf, width=200), r)
    out = buf.getvalue()
    assert "acesso a serviços de cuidado" in out and "Quarteirões do Cuidado propostos" in out
    assert "Creche" in out and "1 aviso de qualidade dos dados" in out
    names = ("Synthetic town", "run_metadata", *r.selected["rationale"], *r.selected["name"])
    assert untranslated(" ".join(out.split()), "pt", data_names=names) == []


def test_time_legend_breaks_are_round_numbers():
    from careblocks.outputs.styles import time_breaks, time_labels

    for t in (15, 20, 10, 30, 7.5, 12.5, 5, 3, 45):
        b = time_breaks(t)
        assert b[0] == 0 and t in b and all(x < y for x, y in zip(b, b[1:], strict=False))
        assert all(float(v).is_integer() or v == t for v in b), (t, b)
    assert time_labels(20) == ["0–5 min", "5–15 min", "15–20 min", "20–25 min", "25–40 min",
                               "more than 40 min"]
    assert time_labels(15, "es")[-1] == "más de 30 min"


def _with_extras(lang: str):
    """Synthetic results with what a full run adds: the coverage curve, the robustness
    table, the selection's exactness, the input audit and data-quality warnings."""
    import pandas as pd

    r = _with_language(make_results(), lang)
    r.coverage_curve = pd.DataFrame({
        "k": [1, 2, 3, 4], "covered_share": [0.31, 0.52, 0.66, 0.71],
        "people_within": [1200.0, 2100.0, 2650.0, 2800.0], "hours_returned_week": [310.0, 480.0, 600.0, 640.0],
        "exact": [True, True, True, False], "gap": [0.0, 0.0, 0.0, 0.0123], "objective": ["gap_closed"] * 4})
    sens = pd.DataFrame({"candidate_id": ["a", "b", "c", "d"], "order": [1.0, 2.0, 3.0, None],
                         "selected_share": [1.0, 0.955, 0.4, 0.2]})
    sens.attrs["draws"] = 200
    r.sensitivity = sens
    r.metadata["stats"] = {"sites": {"status": "time limit", "method": "milp", "mip_gap": 0.004},
                           "sites_curve": {"points": 4, "exact": 3, "max_gap": 0.0123},
                           "sites_target": {"target_share": 0.6, "min_blocks": 3, "status": "optimal"}}
    r.metadata["warnings"] = ["services: services.health.layers[0] (clinics.gpkg): dropped 2 of 9 facilities",
                              "network: walk network: kept 90 of 100 nodes", "odd warning without a stage"]
    r.metadata["audit"] = {"verdict": "warning", "findings": [
        {"severity": "warning", "check": "coverage.network", "where": "network.path", "message": "67% covered"},
        {"severity": "info", "check": "files", "where": "census.layer.path", "message": "census.gpkg: 0.3 MB"}]}
    return r


@pytest.mark.parametrize("lang", ["es", "pt", "fr"])
def test_curve_robustness_selection_and_warnings_speak_the_language(lang):
    """The parts a full run adds (coverage curve, robustness sentence, the selection's
    exactness, the audit and the warnings) are in the language; only the technical detail
    of findings and warnings (file, column and config names) stays English, marked so."""
    from rich.console import Console

    from careblocks.outputs.report import build_report
    from careblocks.summary import print_summary

    L = language(lang)
    r = _with_extras(lang)
    page = build_report(r)
    text = visible_text(page)
    names = tuple(str(v) for v in r.selected["name"]) + tuple(str(v) for v in r.services["name"].dropna())
    names += tuple(r.selected["rationale"]) + ("Synthetic town", "West <b>side</b>", "synthetic.pbf", "ODbL",
                                               "OpenStreetMap", "HiGHS")
    left = untranslated(text, lang, data_names=names)
    if lang == "fr":
        left = [x for x in left if " " in x]
    assert left == []
    assert L._("How many Care Blocks?") in text and L._("What each additional Care Block adds") in text
    assert "200" in text and L._("Services") in text and L._("Street network") in text
    # only the findings' and warnings' own words are marked English, no whole section
    assert '<section lang="en">' not in page and '<span lang="en">' not in page
    assert page.count('<ul lang="en">') == 3  # services, network, other
    buf = io.StringIO()
    print_summary(Console(file=buf, width=400), r)
    out = " ".join(buf.getvalue().split())
    assert L._("Selection: {status}; proven within {gap} of the optimum.").split(":")[0] in out
    left = untranslated(out, lang, data_names=names + ("run_metadata",))
    if lang == "fr":
        left = [x for x in left if " " in x]
    assert left == []


def test_robustness_and_selection_lines_in_english_are_unchanged():
    from careblocks.sites.sensitivity import robustness_sentence
    from careblocks.summary import selection_line

    r = _with_extras("en")
    assert robustness_sentence(r.sensitivity) == (
        "Site 1 is chosen in 100 % of weightings; site 2 in 95 %; site 3 in 40 % "
        "(200 weightings of the score and trip rates).")
    assert robustness_sentence(r.sensitivity, "es") == (
        "El sitio 1 se elige en el 100 % de las ponderaciones; el sitio 2 en el 95 %; el sitio 3 en "
        "el 40 % (200 ponderaciones del puntaje y de las tasas de viaje).")
    assert selection_line({"sites": {"status": "optimal"}, "sites_curve": {"points": 10, "exact": 10}}) == (
        "Selection: optimal (HiGHS). Coverage curve K = 1-10: 10 of 10 points proven optimal.")
    assert selection_line(r.metadata["stats"], "pt").startswith(
        "Seleção: interrompida no tempo limite; a menos de 0,40% do ótimo")
