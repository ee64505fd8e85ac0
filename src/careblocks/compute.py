"""Where the per-item work runs: in this process, or in chunks on a dask.distributed cluster.

The array cores whose work is a loop over independent items (Range-RAPTOR per origin, walk +
transit catchments per origin, walking catchments per candidate, sensitivity draws) hand that
loop to :func:`map_chunks`: a function ``fn(lo, hi, **shared)`` computing items ``lo..hi-1``
and its shared inputs. Without a cluster (the default) it runs here and dask is never
imported. Inside :func:`session` with workers or a scheduler address, the items are cut into
chunks, each chunk is a task, and the shared inputs (network arrays, the timetable) are
scattered to every worker once (``broadcast``), not shipped with every task. Results come back
in chunk order, so the caller concatenates them exactly as one call over all items would
return them: the results do not depend on where or in how many chunks the work ran.

On a worker each task runs its numba kernels on one thread: the cluster's own parallelism
(one task per worker thread) takes the place of the kernels' threads.

The cluster is opened lazily, on the first chunked call, and closed when the session ends; a
run that needs no chunked work (``validate``, a study without transit or sites) starts none.
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from careblocks.errors import ConfigError

__all__ = ["ENV_ADDRESS", "check", "client", "in_process", "map_chunks", "resolve", "session",
           "workers_in_use"]

#: environment variable naming a running scheduler (dask's own convention)
ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"

#: ``reporter(event, stage, detail)`` of the pipeline; chunk progress is event "progress"
Reporter = Callable[[str, str, str], None]

#: how long to wait for a scheduler: a run (it may be starting), ``validate`` (a quick check)
CONNECT_TIMEOUT = "20s"
CHECK_TIMEOUT = "10s"

#: chunks per worker thread: small enough chunks to balance the load, few enough to keep the
#: per-task overhead (a few ms) small against the work
CHUNKS_PER_THREAD = 4


class _Cluster:
    """A dask client opened on first use (a LocalCluster or an existing scheduler)."""

    def __init__(self, *, workers: int, address: str | None, source: str, reporter: Reporter | None):
        self.workers = int(workers)
        self.address = address
        self.source = source  # the config key / flag / variable the address came from
        self.reporter = reporter
        self.client: Any = None
        self.cluster: Any = None
        self._kept: dict[int, tuple[Any, Any]] = {}  # id(object) -> (object, future)

    def open(self, timeout: str | None = None) -> Any:
        if self.client is not None:
            return self.client
        from dask.distributed import Client, LocalCluster

        if self.address:
            try:
                self.client = Client(self.address, timeout=timeout or CONNECT_TIMEOUT,
                                     set_as_default=False)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                fix = (f"unset {ENV_ADDRESS}" if self.source == ENV_ADDRESS
                       else f"remove {self.source}")
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise ConfigError(
                    f"{self.source}: cannot reach the dask scheduler at {self.address!r} ({detail}); "
                    f"start the scheduler, fix the address, or {fix} to run in this process"
                ) from None
        else:
            import warnings

            with warnings.catch_warnings():  # "Port 8787 is already in use": no dashboard here
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None)
            self.client = Client(self.cluster, set_as_default=False)
        return self.client

    def close(self) -> None:
        import logging

        self._kept.clear()
        # shutting down our own LocalCluster: its workers' closing chatter is not news
        quiet = [logging.getLogger(n) for n in ("distributed", "distributed.nanny",
                                               "distributed.scheduler", "distributed.core")]
        levels = [lg.level for lg in quiet]
        if self.cluster is not None:
            for lg in quiet:
                lg.setLevel(logging.CRITICAL + 1)
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            for lg, lv in zip(quiet, levels, strict=True):
                lg.setLevel(lv)
            self.client = self.cluster = None

    def threads(self) -> int:
        return max(1, sum(self.open().nthreads().values()))

    def scatter(self, value: Any, keep: bool) -> Any:
        """The future of ``value`` on every worker (kept for the session when ``keep``)."""
        if keep:
            hit = self._kept.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
        # wrapped in a list so that a tuple or dict is sent as one object
        fut = self.open().scatter([value], broadcast=True, hash=False)[0]
        if keep:
            self._kept[id(value)] = (value, fut)
        return fut


class _InProcess:
    """Marker: run here even when a scheduler address is in the environment (batch workers)."""


_current: contextvars.ContextVar[_Cluster | _InProcess | None] = contextvars.ContextVar(
    "careblocks_compute", default=None)


def resolve(workers: int | None, scheduler_address: str | None) -> tuple[int, str | None, str]:
    """Where chunked work runs: ``(local workers, scheduler address, where it was set)``.

    An address (``compute.scheduler_address`` / ``--scheduler``) comes first, then a number of
    local workers (``compute.workers`` / ``--workers``), then ``DASK_SCHEDULER_ADDRESS``;
    ``(0, None, "")`` means this process. The third item names the config key or the
    environment variable, for error messages.
    """
    if scheduler_address:
        return 0, scheduler_address, "compute.scheduler_address"
    if workers:
        if workers < 0:
            raise ConfigError(f"compute.workers: {workers}; use a number of worker processes >= 0")
        return int(workers), None, "compute.workers"
    env = os.environ.get(ENV_ADDRESS, "").strip()
    if env:
        return 0, env, ENV_ADDRESS
    return 0, None, ""


@contextmanager
def session(*, workers: int | None = 0, scheduler_address: str | None = None,
            reporter: Reporter | None = None) -> Iterator[None]:
    """Run the chunked work of the enclosed code on a cluster.

    Parameters
    ----------
    workers
        Start a ``LocalCluster`` with this many worker processes (one thread each); 0: none.
    scheduler_address
        Address of a running dask.distributed scheduler (takes precedence over ``workers``).
        With neither, the ``DASK_SCHEDULER_ADDRESS`` environment variable is used when set;
        otherwise everything runs in this process.
    reporter
        Receives ``("progress", label, "<done>/<n> chunks on <k> workers")`` as chunks finish.

    A session inside another one (or inside :func:`in_process`) uses the outer one.
    """
    if _current.get() is not None:
        yield
        return
    n, address, source = resolve(workers, scheduler_address)
    if not n and not address:
        yield
        return
    cluster = _Cluster(workers=n, address=address, source=source, reporter=reporter)
    token = _current.set(cluster)
    try:
        yield
    finally:
        _current.reset(token)
        cluster.close()


def check(workers: int | None = 0, scheduler_address: str | None = None, *,
          timeout: str | None = None) -> str | None:
    """What :func:`session` would use, checked without running anything (``validate``).

    A scheduler address (given, or from ``DASK_SCHEDULER_ADDRESS``) is connected to and left
    again; one that cannot be reached raises the :class:`~careblocks.errors.ConfigError` a run
    would, naming the key or variable it came from. Returns a short description (None: this
    process); no local cluster is started.
    """
    n, address, source = resolve(workers, scheduler_address)
    if address:
        cluster = _Cluster(workers=0, address=address, source=source, reporter=None)
        try:
            c = cluster.open(timeout=timeout or CHECK_TIMEOUT)
            info = c.scheduler_info()
            workers_ = info.get("workers", {})
            threads = sum(int(w.get("nthreads", 0)) for w in workers_.values())
        finally:
            cluster.close()
        return f"{address} ({source}): {len(workers_)} workers, {threads} threads"
    if n:
        return f"LocalCluster({n} workers) ({source}), started by the run"
    return None


@contextmanager
def client(workers: int | None = 0, scheduler_address: str | None = None, *,
           default_workers: int = 0) -> Iterator[Any]:
    """A dask client resolved as :func:`session` resolves (see :func:`resolve`), for work
    that is one task per item (``careblocks batch``); with nothing configured, a LocalCluster
    of ``default_workers`` processes. Closed (and the LocalCluster stopped) on exit."""
    n, address, source = resolve(workers, scheduler_address)
    if not address and not n:
        n, source = max(1, int(default_workers)), "workers"
    cluster = _Cluster(workers=n, address=address, source=source, reporter=None)
    try:
        yield cluster.open()
    finally:
        cluster.close()


@contextmanager
def in_process() -> Iterator[None]:
    """Run the enclosed code's chunked work here, whatever the environment says."""
    token = _current.set(_InProcess())
    try:
        yield
    finally:
        _current.reset(token)


def workers_in_use() -> str | None:
    """A short description of the cluster of the current session (None: this process)."""
    c = _current.get()
    if not isinstance(c, _Cluster):
        return None
    return c.address or f"LocalCluster({c.workers} workers)"


def _run_chunk(fn: Callable[..., Any], lo: int, hi: int, shared: dict[str, Any]) -> Any:
    """A task on a worker: the kernels on one thread (the cluster runs tasks side by side)."""
    import numba

    numba.set_num_threads(1)
    return fn(lo, hi, **shared)


def _bounds(n_items: int, n_chunks: int, chunk_size: int | None) -> list[tuple[int, int]]:
    size = math.ceil(n_items / max(1, n_chunks))
    if chunk_size:
        size = min(size, int(chunk_size))
    size = max(1, size)
    return [(a, min(a + size, n_items)) for a in range(0, n_items, size)]


def map_chunks(fn: Callable[..., Any], n_items: int, shared: Mapping[str, Any] | None = None, *,
               chunk_size: int | None = None, keep: tuple[str, ...] = (), label: str = "") -> list[Any]:
    """``[fn(lo, hi, **shared) for each chunk]`` over items ``0..n_items-1``, in chunk order.

    Parameters
    ----------
    fn
        A module-level function (workers import it by name) of ``lo, hi`` and the shared
        inputs; its result for ``lo..hi`` must not depend on the other items.
    n_items
        How many items (origins, candidates, draws).
    shared
        Inputs every chunk reads; on a cluster each is sent once to every worker.
    chunk_size
        Most items per chunk; in this process ``None`` means one call over all items (the
        kernels are parallel already), a number bounds the memory of one call.
    keep
        Names of ``shared`` values to keep on the workers for the rest of the session (the
        network, the timetable), so later calls with the same objects do not send them again.
    label
        Name of the work in the progress events.

    Returns
    -------
    list
        One result per chunk, in the order of the items (an empty list for no items).
    """
    kw = dict(shared or {})
    if n_items <= 0:
        return []
    cluster = _current.get()
    if not isinstance(cluster, _Cluster):
        step = int(chunk_size) if chunk_size else n_items
        return [fn(a, min(a + step, n_items), **kw) for a in range(0, n_items, step)]
    from dask.distributed import as_completed

    client = cluster.open()
    threads = cluster.threads()
    bounds = _bounds(n_items, CHUNKS_PER_THREAD * threads, chunk_size)
    scalars = (int, float, str, bool, type(None))
    sent = {k: v if isinstance(v, scalars) else cluster.scatter(v, k in keep) for k, v in kw.items()}
    futures = [client.submit(_run_chunk, fn, a, b, sent, pure=False) for a, b in bounds]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(futures)
    report = cluster.reporter
    done = 0
    try:
        for fut in as_completed(futures, loop=client.loop):
            out[index[fut.key]] = fut.result()
            done += 1
            if report is not None:
                report("progress", label, f"{done}/{len(futures)} chunks on {threads} worker threads")
    finally:
        for f in futures:
            f.release()
    return out
