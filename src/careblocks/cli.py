"""The ``careblocks`` command line: a thin shell over the public API (:mod:`careblocks.api`:
``careblocks.run``, ``validate``, ``prioritise``), which is the one entry to the pipeline.

User mistakes (a :class:`~careblocks.errors.CareblocksError`) print one line and exit with
code 2; tracebacks only with ``-vv``. Heavy imports (the API, with geopandas and numba; rich)
happen inside the commands so that ``careblocks --help`` is instant: ``careblocks`` itself
loads its API on first use.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import careblocks
from careblocks._crash import write_crash_log
from careblocks.errors import CareblocksError

EXIT_USER_ERROR = 2
#: exit code of an unexpected exception (a bug): one line and a crash log
EXIT_BUG = 3


class _State:
    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity

    @property
    def console(self) -> Any:
        from rich.console import Console

        return Console(stderr=False, quiet=self.verbosity < 0, highlight=False)


def _console(verbose: int, quiet: int) -> tuple[int, Any]:
    """The verbosity (``-v`` minus ``-q``) and the console of a command."""
    verbosity = verbose - quiet
    return verbosity, _State(verbosity).console


def _echo_written(paths: Any) -> None:
    for p in paths:
        click.echo(f"wrote {Path(p).resolve()}")


def _verbosity_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-q", "--quiet", count=True, help="Print less (only errors and paths).")(f)
    f = click.option("-v", "--verbose", count=True, help="Print more; -vv shows tracebacks.")(f)
    return f


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fail(message: str) -> None:
    click.echo(f"careblocks: error: {_one_line(message, 2000)}", err=True)
    sys.exit(EXIT_USER_ERROR)


def _bug(exc: BaseException) -> None:
    log = write_crash_log(exc)
    where = f"details in {log}" if log else "run again with -vv for the traceback"
    click.echo(
        f"careblocks: internal error (this is a bug in careblocks, please report it with the log): "
        f"{type(exc).__name__}: {_one_line(exc)}; {where}",
        err=True,
    )
    sys.exit(EXIT_BUG)


def _guard(verbosity: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; turn user errors into one line and exit 2, anything else (a bug) into one
    line naming a crash log and exit 3. ``-vv`` shows the traceback instead."""
    try:
        return fn()
    except CareblocksError as exc:
        if verbosity >= 2:
            raise
        _fail(str(exc))
    except PermissionError as exc:
        if verbosity >= 2:
            raise
        _fail(f"{exc.filename}: permission denied; choose a folder you can write to (--out DIR)")
    except KeyboardInterrupt:
        click.echo("careblocks: interrupted; the previous output files are unchanged", err=True)
        sys.exit(130)
    except OSError as exc:
        if verbosity >= 2:
            raise
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            _fail(f"{exc.filename or 'output'}: {exc.strerror}; free space or choose another "
                  "folder (--out DIR)")
        _bug(exc)
    except Exception as exc:  # noqa: BLE001 - every other exception is a bug
        if verbosity >= 2:
            raise
        _bug(exc)


def _load(config_path: str | None, overrides: tuple[str, ...]) -> Any:
    from careblocks.config import default_config_path, load_config, parse_override

    parsed = dict(parse_override(o) for o in overrides)
    path = Path(config_path) if config_path else default_config_path()
    return load_config(path, overrides=parsed)


def _reporter(console: Any, verbosity: int) -> Callable[[str, str, str], None]:
    """Progress lines per stage; a spinner runs while a stage works (on a terminal)."""
    from rich.text import Text

    status: dict[str, Any] = {}

    def stop() -> None:
        if "s" in status:
            status.pop("s").stop()

    def report(event: str, stage: str, detail: str) -> None:
        if verbosity < 0:
            return
        if event == "start":
            stop()
            if verbosity >= 1:
                console.print(f"[dim]… {stage}[/dim]")
            if console.is_terminal:
                status["s"] = console.status(f"{stage}…")
                status["s"].start()
        elif event == "done":
            stop()
            console.print(f"[green]✓[/green] {stage:<12} [dim]{detail}[/dim]")
        elif event == "progress":  # chunks done across the cluster
            if "s" in status:
                status["s"].update(f"{stage}… {detail}")
            elif verbosity >= 1:
                console.print(Text.assemble(("  " + stage + ": ", "dim"), detail))
        elif event == "info":
            console.print(Text.assemble(("  " + stage + ": ", "dim"), detail))
        elif event == "warning":
            console.print(Text.assemble(("  warning ", "yellow"), f"{stage}: {detail}"))

    return report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="careblocks")
def cli() -> None:
    """careblocks: where should the next Care Blocks go, and why?

    Walking (and walk + transit) access from every household to daycare, health,
    laundromat and community-kitchen services; who is underserved; and explainable
    selection of sites for co-located Care Blocks.
    """


_strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Treat every data-quality warning as an error (exit 2), for unattended runs.",
)

def _compute_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--scheduler", "scheduler", metavar="ADDRESS",
        help="Run the per-origin work on this running dask.distributed scheduler "
             "(compute.scheduler_address; default: $DASK_SCHEDULER_ADDRESS when set).",
    )(f)
    f = click.option(
        "--workers", type=click.IntRange(min=0), default=None,
        help="Split the per-origin work over a local Dask cluster of N worker processes "
             "(compute.workers; 0 = this process). The results are the same.",
    )(f)
    return f


def _compute_overrides(workers: int | None, scheduler: str | None) -> list[str]:
    extra = []
    if workers is not None:
        extra.append(f"compute.workers={workers}")
    if scheduler:
        extra.append(f"compute.scheduler_address={json.dumps(scheduler)}")
    return extra


_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set walk.speed_kmh=3.6 (repeatable).",
)


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Write careblocks.gpkg, map.html and report.html into this folder.",
)
@_set_option
@_compute_options
@_strict_option
@_verbosity_options
def run(
    config: str | None,
    out_dir: Path | None,
    overrides: tuple[str, ...],
    verbose: int,
    quiet: int,
    strict: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    """Run a study: access, care need, site selection, and the GeoPackage, map and report.

    Without CONFIG, runs the embedded default: the Fontibón (Bogotá) study on the compact
    sample shipped inside the package (OSM extract, census sectors, SDIS centres).
    """
    verbosity, console = _console(verbose, quiet)

    overrides = tuple(overrides) + tuple(_compute_overrides(workers, scheduler))

    def go() -> None:
        cfg = _load(config, overrides)
        if config is None:
            console.print(
                "No config given: running the embedded default study "
                f"'{cfg.study.label}' ({cfg.source_path})."
            )
        results, written = careblocks.run(
            cfg, out_dir, reporter=_reporter(console, verbosity), strict=strict
        )
        if verbosity >= 0:
            from careblocks.summary import print_summary

            print_summary(console, results)
        _echo_written(written)

    _guard(verbosity, go)


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@_set_option
@_compute_options
@_strict_option
@_verbosity_options
def validate(config: str, overrides: tuple[str, ...], verbose: int, quiet: int, strict: bool = False,
             workers: int | None = None, scheduler: str | None = None) -> None:
    """Check a config and every input; print what was found, without running the analysis.

    A configured Dask scheduler (--scheduler, compute.scheduler_address or
    $DASK_SCHEDULER_ADDRESS) must answer."""
    verbosity, console = _console(verbose, quiet)
    overrides = tuple(overrides) + tuple(_compute_overrides(workers, scheduler))

    def go() -> None:
        from careblocks.summary import print_validation

        cfg = _load(config, overrides)
        results = careblocks.validate(cfg, reporter=_reporter(console, verbosity), strict=strict)
        print_validation(console, results)
        click.echo(f"{config}: OK")

    _guard(verbosity, go)


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--k", "k", type=click.IntRange(min=1), help="How many sites to select.")
@click.option("--method", type=click.Choice(["milp", "greedy", "auto"]), help="Selection method.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path))
@_set_option
@_compute_options
@_strict_option
@_verbosity_options
def sites(
    config: str,
    k: int | None,
    method: str | None,
    out_dir: Path | None,
    overrides: tuple[str, ...],
    verbose: int,
    quiet: int,
    strict: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    """Select sites for Care Blocks (runs the whole study with site selection on)."""
    extra = list(overrides) + ["sites.enabled=true"] + _compute_overrides(workers, scheduler)
    if k is not None:
        extra.append(f"sites.k={k}")
    if method is not None:
        extra.append(f'sites.method="{method}"')
    ctx_run = click.get_current_context()
    ctx_run.invoke(
        run, config=config, out_dir=out_dir, overrides=tuple(extra), verbose=verbose, quiet=quiet,
        strict=strict,
    )


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write prioritise.gpkg, prioritise.html and the CSV tables into this folder.")
@_set_option
@_verbosity_options
def prioritise(config: str, out_dir: Path | None, overrides: tuple[str, ...], verbose: int,
               quiet: int) -> None:
    """Rank every census unit and district of a city by the care-need index.

    From the census, plus the facility layers of the config for the supply gap: walking
    times on the config's street network when it has one, else straight-line distances x
    prioritise.detour_factor.
    """
    verbosity, console = _console(verbose, quiet)

    def go() -> None:
        from rich.markup import escape

        cfg = _load(config, overrides)
        res, written = careblocks.prioritise(cfg, out_dir)
        if verbosity >= 0:
            for w in res.info.get("warnings", []):
                console.print(f"  [yellow]warning[/yellow] {escape(w)}")
            from careblocks.summary import print_prioritisation

            print_prioritisation(console, res, top=cfg.prioritise.top)
        _echo_written(written)

    _guard(verbosity, go)


@cli.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write each study to OUT/<study>/.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Run the studies on a local Dask cluster of N worker processes (default 2 when "
                   "no scheduler is configured).")
@click.option("--scheduler", "scheduler", metavar="ADDRESS",
              help="Address of a running dask.distributed scheduler (default: the configs' "
                   "compute.scheduler_address, else $DASK_SCHEDULER_ADDRESS when --workers is not given).")
@_set_option
@_verbosity_options
def batch(
    configs: tuple[str, ...],
    out_dir: str | None,
    workers: int | None,
    scheduler: str | None,
    overrides: tuple[str, ...],
    verbose: int,
    quiet: int,
) -> None:
    """Run many studies side by side on a dask.distributed cluster (one process per study).

    A failing study does not stop the others. Exit code 0 when every study ran, 2 when some
    failed on bad input (each with its one-line error), 3 when some crashed (a bug in
    careblocks: each names its crash log).
    """
    verbosity, console = _console(verbose, quiet)

    def go() -> None:
        from rich.markup import escape
        from rich.table import Table

        from careblocks.batch import run_batch
        from careblocks.config import parse_override

        parsed = dict(parse_override(o) for o in overrides)
        outcomes = run_batch(
            list(configs), out_dir=out_dir, overrides=parsed, workers=workers, scheduler_address=scheduler
        )
        if verbosity >= 0:
            table = Table(title=f"Batch: {len(outcomes)} studies")
            for col in ("study", "status", "seconds", "detail"):
                table.add_column(col, justify="right" if col == "seconds" else "left")
            style = {"ok": "green", "error": "yellow", "crashed": "red"}
            for o in outcomes:
                detail = (str(Path(o.written[0]).parent) if o.written else "") if o.ok else (
                    f"crash log {o.crash_log}" if o.status == "crashed" and o.crash_log else o.message)
                table.add_row(escape(o.config), f"[{style[o.status]}]{o.status}[/]", f"{o.seconds:.1f}",
                              escape(_one_line(detail)))
            console.print(table)
        for o in outcomes:
            _echo_written(o.written)
        for o in outcomes:
            if o.status == "error":
                click.echo(f"careblocks: error: {o.config}: {_one_line(o.message, 2000)}", err=True)
            elif o.status == "crashed":
                where = f"details in {o.crash_log}" if o.crash_log else "no crash log could be written"
                click.echo(f"careblocks: internal error in {o.config} (a bug in careblocks, please "
                           f"report it with the log): {_one_line(o.message)}; {where}", err=True)
        if any(o.status == "crashed" for o in outcomes):
            sys.exit(EXIT_BUG)
        if any(o.status == "error" for o in outcomes):
            sys.exit(EXIT_USER_ERROR)

    _guard(verbosity, go)


@cli.command()
@click.argument("run_a", type=click.Path())
@click.argument("run_b", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("compare"),
              show_default=True, help="Folder for compare.csv, compare.html and compare.gpkg.")
@_verbosity_options
def compare(run_a: str, run_b: str, out_dir: Path, verbose: int, quiet: int) -> None:
    """Compare two runs side by side (their output folders or careblocks.gpkg files)."""
    verbosity, console = _console(verbose, quiet)

    def go() -> None:
        from careblocks.outputs.compare import _fmt, compare_runs, write_comparison

        table = compare_runs(run_a, run_b)
        if verbosity >= 0:
            from rich.table import Table

            t = Table(title="A against B")
            for c in ("figure", "A", "B", "B - A"):
                t.add_column(c, justify="left" if c == "figure" else "right")
            for _, r in table.iterrows():
                t.add_row(*[_fmt(r[c]) for c in ("figure", "A", "B", "B - A")])
            console.print(t)
        for p in write_comparison(table, out_dir):
            click.echo(f"wrote {p}")

    _guard(verbosity, go)


def main() -> None:
    cli(prog_name="careblocks")


if __name__ == "__main__":  # pragma: no cover
    main()
