"""Outputs change together: runs killed (SIGKILL) at every point of writing, including between
the renames of the switch, leave the previous complete set or the new complete set, never a
mix; the next run leaves no leftovers.

Each write runs in a child process (``pipeline.write_outputs`` on synthetic results, two
different runs A and B, SOURCE_DATE_EPOCH set so their bytes are reproducible); the child
kills itself with SIGKILL at the named point (``CAREBLOCKS_KILL_AT``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
NAMES = ("careblocks.gpkg", "map.html", "report.html")

_CHILD = """
import sys
sys.path[:0] = [{src!r}, {tests!r}]
from pathlib import Path
from _synthetic import make_results
from careblocks.config import config_from_dict
from careblocks.pipeline import OutputPaths, write_outputs
r = make_results(seed={seed})
r.config = config_from_dict({{"study": {{"name": "Run {seed}"}}}})
d = Path({out!r})
write_outputs(r, OutputPaths(d / "careblocks.gpkg", d / "map.html", d / "report.html"))
"""

#: while staging (after the first file, after the last), before the switch, between the switch
#: and the rename of the swapped-out folder, before that folder is deleted
POINTS = ["wrote:careblocks.gpkg", "wrote:report.html", "staged", "switched", "renamed-old"]


def write(out: Path, seed: int, kill_at: str | None = None) -> int:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    env.pop("CAREBLOCKS_KILL_AT", None)
    if kill_at:
        env["CAREBLOCKS_KILL_AT"] = kill_at
    code = _CHILD.format(src=str(SRC), tests=str(TESTS), seed=seed, out=str(out))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=600).returncode


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The complete sets of runs A and B, written without interruption."""
    root = tmp_path_factory.mktemp("sets")
    assert write(root / "a", 1) == 0 and write(root / "b", 2) == 0
    a, b = snapshot(root / "a"), snapshot(root / "b")
    assert set(a) == set(b) == set(NAMES)
    assert all(a[n] != b[n] for n in NAMES)  # the two runs differ in every file
    return a, b


@pytest.mark.parametrize("point", POINTS)
def test_kill_leaves_one_complete_set(sets, tmp_path, point):
    a, b = sets
    out = tmp_path / "study"
    assert write(out, 1) == 0
    (out / "notes.txt").write_text("the planner's own file")  # other files stay
    assert write(out, 2, kill_at=point) == -signal.SIGKILL
    now = snapshot(out)
    notes = now.pop("notes.txt")
    assert notes == b"the planner's own file"
    assert now in (a, b), f"killed at {point}: a mix of two runs"
    assert now == (b if point in ("switched", "renamed-old") else a)
    # a leftover of the killed run may sit beside the folder; the next run removes it
    assert write(out, 2) == 0
    assert {k: v for k, v in snapshot(out).items() if k != "notes.txt"} == b
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*NAMES, "notes.txt"])


def test_first_run_killed_leaves_nothing_then_next_run_is_complete(sets, tmp_path):
    a, _ = sets
    out = tmp_path / "study"
    assert write(out, 1, kill_at="wrote:map.html") == -signal.SIGKILL
    assert not out.exists()
    assert write(out, 1) == 0
    assert snapshot(out) == a
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]
