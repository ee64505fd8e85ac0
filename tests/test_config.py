"""Config loading and validation: every mistake names its key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from careblocks.config import (
    DEFAULT_SERVICES,
    SERVICE_TYPES,
    config_from_dict,
    data_dir,
    default_config_path,
    load_config,
    parse_override,
)
from careblocks.errors import ConfigError

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))


def test_every_shipped_config_validates() -> None:
    assert len(CONFIGS) >= 5
    for path in CONFIGS + [default_config_path()]:
        cfg = load_config(path)
        assert cfg.source_path == path.resolve()
        assert cfg.walk.speed_kmh > 0
        assert set(SERVICE_TYPES) <= set(cfg.service_names), path


def test_defaults_fill_the_four_services_with_osm_wiki_tags() -> None:
    cfg = config_from_dict({})
    assert cfg.service_names == SERVICE_TYPES
    assert cfg.services["daycare"].osm_tags == {"amenity": ["kindergarten", "childcare"]}
    assert "dry_cleaning" in cfg.services["laundromat"].osm_tags["shop"]
    assert cfg.walk.speed_kmh == 4.8 and cfg.access.threshold_min == 15.0


def test_service_override_keeps_unset_defaults() -> None:
    cfg = config_from_dict({"services": {"health": {"dedupe_m": 80}}})
    assert cfg.services["health"].dedupe_m == 80.0
    assert cfg.services["health"].osm_tags == DEFAULT_SERVICES["health"]["osm_tags"]
    assert cfg.service_names == ("health",)


def test_data_dir_variable_is_expanded(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAREBLOCKS_DATA_DIR", str(tmp_path))
    cfg = config_from_dict({"network": {"path": "${CAREBLOCKS_DATA_DIR}/x/y.pbf"}})
    assert cfg.network.path == tmp_path / "x" / "y.pbf"
    assert data_dir() == tmp_path


def test_relative_paths_resolve_against_the_config_folder(tmp_path) -> None:
    p = tmp_path / "study.toml"
    p.write_text('[network]\npath = "osm/area.pbf"\n')
    assert load_config(p).network.path == (tmp_path / "osm" / "area.pbf").resolve()


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"walk": {"sped_kmh": 3}}, "'walk.sped_kmh' is unknown (did you mean 'speed_kmh'?)"),
        ({"walk": {"speed_kmh": "fast"}}, "'walk.speed_kmh': expected a number"),
        ({"walk": {"speed_kmh": -1}}, "'walk.speed_kmh': must be greater than 0"),
        ({"walk": {"speed_kmh": 40}}, "not a walking speed"),
        ({"network": {"source": "shapefile"}}, "'network.source': 'shapefile' is not allowed; use one of 'osm'"),
        ({"study": {"bbox": [1, 2, 3]}}, "'study.bbox': expected 4 values"),
        ({"study": {"bbox": [10, 5, 0, 6]}}, "is not [min_lon, min_lat, max_lon, max_lat]"),
        ({"services": {"Day Care": {}}}, "lower_snake_case"),
        ({"services": {"daycare": {"use_osm": False}}}, "use_osm is false and no layers"),
        ({"transit": {"percentiles": [50], "report_percentile": 75}}, "'transit.report_percentile'"),
        ({"access": {"threshold_min": 0}}, "'access.threshold_min': must be greater than 0"),
        ({"bogus": {}}, "'bogus' is unknown"),
        ({"transit": {"date": "2019-13-45"}}, "'transit.date': '2019-13-45' is not a date"),
        ({"transit": {"window_start": "7am"}}, "'transit.window_start': '7am' is not a time"),
    ],
)
def test_bad_values_name_the_key(raw, needle) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[walk\nspeed_kmh = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    yml = tmp_path / "study.yaml"
    yml.write_text("walk: {}")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(yml)


def test_undefined_variable(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"\$\{NOPE_NOT_SET\} is not set"):
        config_from_dict({"network": {"path": "${NOPE_NOT_SET}/a.pbf"}})


def test_overrides_are_validated_like_the_file() -> None:
    key, value = parse_override("walk.speed_kmh=3.6")
    cfg = config_from_dict({}, overrides={key: value})
    assert cfg.walk.speed_kmh == 3.6
    assert parse_override('sites.method="greedy"') == ("sites.method", "greedy")
    assert parse_override("study.name=Bosa") == ("study.name", "Bosa")
    with pytest.raises(ConfigError, match="'sites.k': expected a whole number"):
        config_from_dict({}, overrides={"sites.k": 2.5})
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("walk.speed_kmh")
