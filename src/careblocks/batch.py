"""Run many studies (areas) side by side on a dask.distributed cluster.

Each study runs in its own worker process (numba kernels and GDAL are not shared between
studies), so a machine with N cores runs N studies at once. A study that fails does not stop
the others: with a user error (a :class:`~careblocks.errors.CareblocksError`) it is reported
with its one-line message (status ``"error"``); with any other exception, a bug, with the
crash log written for it (status ``"crashed"``), as ``careblocks run`` does for exit code 3.
A worker process that dies under a study is reported as that study's crash too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import careblocks
from careblocks import compute
from careblocks._crash import write_crash_log
from careblocks.config import load_config
from careblocks.errors import CareblocksError, ConfigError

#: what became of one study
Status = Literal["ok", "error", "crashed"]


@dataclass
class BatchOutcome:
    config: str
    ok: bool
    message: str
    written: list[str]
    seconds: float
    #: "ok", "error" (bad input: the one-line message) or "crashed" (a bug: see crash_log)
    status: Status = "ok"
    #: the crash log of a study that crashed (None when it could not be written)
    crash_log: str | None = field(default=None)


def _crashed(config_path: str, exc: BaseException, seconds: float) -> BatchOutcome:
    log = write_crash_log(exc, context=f"batch study: {config_path}")
    one = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
    return BatchOutcome(config_path, False, one, [], seconds, "crashed", str(log) if log else None)


def _run_one(config_path: str, out_dir: str | None, overrides: dict[str, Any]) -> BatchOutcome:
    t0 = time.perf_counter()
    try:
        cfg = load_config(config_path, overrides=overrides)
        target = None
        if out_dir is not None:
            target = Path(out_dir) / cfg.study.slug
        with compute.in_process():  # the batch's workers run whole studies, one each
            _, written = careblocks.run(cfg, target)
        return BatchOutcome(config_path, True, "ok", [str(p) for p in written], time.perf_counter() - t0)
    except CareblocksError as exc:
        return BatchOutcome(config_path, False, str(exc), [], time.perf_counter() - t0, "error")
    except Exception as exc:  # noqa: BLE001 - any other exception is a bug: logged, the batch goes on
        return _crashed(config_path, exc, time.perf_counter() - t0)


#: worker processes of the local cluster when nothing else is configured
DEFAULT_WORKERS = 2


def _configured_address(configs: list[str], overrides: dict[str, Any]) -> str | None:
    """The scheduler address the studies' configs name (None: none). A config that cannot be
    read is skipped here: its study reports the error."""
    found: dict[str, str] = {}
    for c in configs:
        try:
            addr = load_config(c, overrides=overrides).compute.scheduler_address
        except CareblocksError:
            continue
        if addr:
            found.setdefault(addr, c)
    if len(found) > 1:
        named = "; ".join(f"{c}: {a!r}" for a, c in found.items())
        raise ConfigError(f"compute.scheduler_address: the studies name different schedulers ({named}); "
                          "a batch runs on one cluster: give it with --scheduler or make them agree")
    return next(iter(found), None)


def run_batch(
    configs: list[str],
    *,
    out_dir: str | None = None,
    overrides: dict[str, Any] | None = None,
    workers: int | None = None,
    scheduler_address: str | None = None,
) -> list[BatchOutcome]:
    """Run every config; return one outcome per config, in the order given.

    A failing study never stops the others (see the module's notes); the outcomes say which
    failed and how.

    Parameters
    ----------
    configs
        Paths of study configs.
    out_dir
        Each study writes to ``out_dir/<study name>/``; by default to its own configured place.
    workers
        Worker processes of a local cluster.
    scheduler_address
        Address of an existing dask.distributed scheduler to submit to instead.

    The cluster is chosen as ``careblocks run`` chooses it (:func:`careblocks.compute.resolve`):
    ``scheduler_address``, else the studies' ``compute.scheduler_address`` (with the
    overrides; they must agree), else ``workers``, else ``DASK_SCHEDULER_ADDRESS``, else a
    local cluster of :data:`DEFAULT_WORKERS` processes. A scheduler that cannot be reached is a
    :class:`~careblocks.errors.ConfigError` before any study runs.
    """
    overrides = overrides or {}
    address = scheduler_address or _configured_address(configs, overrides)
    with compute.client(workers, address, default_workers=DEFAULT_WORKERS) as client:
        t0 = time.perf_counter()
        futures = [client.submit(_run_one, c, out_dir, overrides, pure=False) for c in configs]
        outcomes = []
        for c, fut in zip(configs, futures, strict=True):
            try:
                outcomes.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - the worker died under this study
                outcomes.append(_crashed(c, exc, time.perf_counter() - t0))
        return outcomes
