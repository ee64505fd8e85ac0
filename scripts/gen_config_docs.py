"""Write docs/config.md from the Config dataclasses (field types, defaults and `#:` comments).

Run `python scripts/gen_config_docs.py`; tests/test_docs.py checks the file is up to date.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from careblocks import config as C  # noqa: E402

SECTIONS = [
    ("study", C.StudyConfig, "The study area."),
    ("network", C.NetworkConfig, "Where the walking network comes from."),
    ("walk", C.WalkConfig, "Walking speed, slope and snapping."),
    ("walk.profiles.<name>", C.ProfileConfig, "One carer travel profile (stroller, wheelchair, older_adult are preset)."),
    ("services.<name>", C.ServiceConfig, "One table per service; the four care services are preset."),
    ("services.<name>.layers[]", C.ServiceLayer, "Facilities from a vector layer or CSV."),
    ("population", C.PopulationConfig, "Where people live (the origins)."),
    ("access", C.AccessConfig, "Thresholds."),
    ("transit", C.TransitConfig, "Walk + transit from GTFS feeds."),
    ("census", C.CensusConfig, "Census layers and the care groups (see care_need_index.md)."),
    ("census.groups", C.CensusGroups, "Care group -> census column, or a table built from columns."),
    ("census.groups.<group> (a table)", C.CensusGroup, "A care group from rates, shares or age bands."),
    ("care_index", C.CareIndexConfig, "Weights of the care-need index."),
    ("accessibility", C.AccessibilityConfig, "Supply against demand: 2SFCA, gravity, deserts (see accessibility.md)."),
    ("sites", C.SitesConfig, "Candidate sites and selection (see site_selection.md)."),
    ("prioritise", C.PrioritiseConfig, "City-wide ranking of census units (`careblocks prioritise`)."),
    ("sensitivity", C.SensitivityConfig, "How often each site is chosen under other weightings."),
    ("outputs", C.OutputConfig, "Where and how results are written."),
    ("audit", C.AuditConfig, "Thresholds of the input audit (see input_audit.md)."),
    ("compute", C.ComputeConfig, "Where the per-origin work runs: this process or a Dask cluster."),
    ("(any layer)", C.LayerRef, "A layer reference: `{ path = ..., layer = ... }`."),
]


def field_comments() -> dict[tuple[str, str], str]:
    src = Path(C.__file__).read_text(encoding="utf-8")
    lines = src.splitlines()
    out: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    i = stmt.lineno - 2
                    doc: list[str] = []
                    while i >= 0 and lines[i].strip().startswith("#:"):
                        doc.insert(0, lines[i].strip()[2:].strip())
                        i -= 1
                    out[(node.name, stmt.target.id)] = " ".join(doc)
    return out


def type_text(tp: object) -> str:
    return C._type_name(tp).replace("|", "or")


def default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        v = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        v = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(v):
            return "(table)"
        if isinstance(v, dict) and v and all(dataclasses.is_dataclass(x) for x in v.values()):
            return "tables " + ", ".join(v)
    else:
        return "required"
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return str(list(v) if isinstance(v, tuple) else v)


def render() -> str:
    docs = field_comments()
    out = [
        "# Config reference",
        "",
        "One TOML file per study (examples in `configs/`). Every key is checked on load: an unknown",
        "key, a wrong type or a value that is not allowed stops the run with one line naming the key",
        "path. Strings may use `${CAREBLOCKS_DATA_DIR}` (default `../shared/data` from the project",
        "root) and other environment variables; relative paths are relative to the config file.",
        "Any key can be overridden on the command line: `--set walk.speed_kmh=3.6`.",
        "",
        "This page is generated from `src/careblocks/config.py` by `scripts/gen_config_docs.py`.",
        "",
    ]
    for name, cls, intro in SECTIONS:
        out += [f"## `[{name}]`", "", intro, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("source_path", "raw"):
                continue
            meaning = docs.get((cls.__name__, f.name), "").replace("|", "\\|")
            out.append(f"| `{f.name}` | {type_text(hints[f.name])} | {default_text(f)} | {meaning} |")
        out.append("")
    out += ["## Default services", "", "| service | OSM tags | trips per week |", "|---|---|---|"]
    for s, spec in C.DEFAULT_SERVICES.items():
        tags = "; ".join(f"{k} = {', '.join(v)}" for k, v in spec["osm_tags"].items())
        out.append(f"| `{s}` | {tags} | {spec['trips_per_week']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "config.md").write_text(render(), encoding="utf-8")
    print("wrote docs/config.md")
