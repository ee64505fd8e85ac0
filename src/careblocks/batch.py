"""Run many studies (areas) side by side on a dask.distributed cluster.

Each study runs in its own worker process (numba kernels and GDAL are not shared between
studies), so a machine with N cores runs N studies at once. A study that fails with a user
error is reported as failed with its one-line message; the others go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.distributed import Client, LocalCluster

import careblocks
from careblocks.config import load_config
from careblocks.errors import CareblocksError


@dataclass
class BatchOutcome:
    config: str
    ok: bool
    message: str
    written: list[str]
    seconds: float


def _run_one(config_path: str, out_dir: str | None, overrides: dict[str, Any]) -> BatchOutcome:
    t0 = time.perf_counter()
    try:
        cfg = load_config(config_path, overrides=overrides)
        target = None
        if out_dir is not None:
            target = Path(out_dir) / cfg.study.slug
        _, written = careblocks.run(cfg, target)
        return BatchOutcome(config_path, True, "ok", [str(p) for p in written], time.perf_counter() - t0)
    except CareblocksError as exc:
        return BatchOutcome(config_path, False, str(exc), [], time.perf_counter() - t0)


def run_batch(
    configs: list[str],
    *,
    out_dir: str | None = None,
    overrides: dict[str, Any] | None = None,
    workers: int = 2,
    scheduler_address: str | None = None,
) -> list[BatchOutcome]:
    """Run every config; return one outcome per config, in the order given.

    Parameters
    ----------
    configs
        Paths of study configs.
    out_dir
        Each study writes to ``out_dir/<study name>/``; by default to its own configured place.
    workers
        Worker processes of the local cluster (ignored with ``scheduler_address``).
    scheduler_address
        Address of an existing dask.distributed scheduler to submit to instead.
    """
    overrides = overrides or {}
    if scheduler_address:
        client = Client(scheduler_address)
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        futures = [client.submit(_run_one, c, out_dir, overrides, pure=False) for c in configs]
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
