"""The generated config reference stays in step with the code; README commands exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_config_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert current == gen.render(), "run: python scripts/gen_config_docs.py"


def test_readme_names_the_two_setup_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    for link in ("docs/config.md", "docs/outputs.md", "docs/benchmarks.md", "docs/img/map.png"):
        assert link in readme and (ROOT / link).exists(), link
