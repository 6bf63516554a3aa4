"""The ``vaeray`` command line. Thin: parse, call the library, print.

Every user-facing problem (:class:`vaeray.errors.VaerayError`) becomes one line on stderr and a non-zero exit
code (2 for an invalid config or sweep file); no traceback, nothing half-written.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .errors import VaerayError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vaeray")
def main() -> None:
    """vaeray: VAE studies on one laptop or a Ray cluster."""


def _data_dir_option(f):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where datasets live (default: $VAERAY_DATA, else the user cache dir).",
    )(f)


@main.command()
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable).")
@_data_dir_option
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Default: runs/<config name>.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: train.device).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(config_file, overrides, data_dir, run_dir, resume, device, no_progress) -> None:
    """Train one model from a run-config YAML file."""
    from . import config as config_mod
    from .rundir import RunDir
    from .train import build_dataset, fit, resolve_device

    cfg = config_mod.load(config_file, overrides)
    if device is not None:
        config_mod.check_device(device, "--device")
    run = RunDir(run_dir or Path("runs") / Path(config_file).stem)
    state = run.check(resume)  # reads only: nothing is written before fit says the run has started
    for note in run.notes:
        click.echo(f"warning: {note}", err=True)
    final: dict = {}
    seen = {"step": int(state["step"]) if state else 0, "checkpoint": int(state["step"]) if state else None}

    def report(metrics, ckpt):
        run.report(metrics, ckpt)
        seen["step"] = int(metrics.get("step", seen["step"]))
        if ckpt is not None:
            final["state"] = ckpt
            seen["checkpoint"] = seen["step"]

    # what `auto` became (resolved.json) is recorded once fit has started the run: nothing is written before
    dev = resolve_device(device or cfg["train"]["device"])
    data = build_dataset(cfg, "train", dev, data_dir)

    def started(resolved: dict, step: int) -> None:
        run.start(resolved, step)
        run.record_resolved(resolved, dev, data)

    try:
        metrics = fit(
            cfg, report=report, checkpoint=state, dataset=data, data_dir=data_dir, device=dev,
            progress=not no_progress, started=started,
        )  # fmt: skip
    except KeyboardInterrupt:
        where = f"step {seen['checkpoint']}" if seen["checkpoint"] is not None else "no checkpoint yet: it starts over"
        again = " ".join(["vaeray train", str(config_file), *(f"--set {o}" for o in overrides), "--run-dir", str(run.path), "--resume"])
        click.echo(f"interrupted at step {seen['step']}; resume from the last checkpoint ({where}) with: {again}", err=True)
        sys.exit(130)
    if "state" in final:
        run.finish(final["state"])
    shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    click.echo(f"run directory: {run.path}")
    click.echo(json.dumps(shown))


@main.command(name="eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="e.g. eval.metrics.mig.num_train=737280")
@_data_dir_option
@click.option("--device", default=None)
def eval_cmd(run_dir, overrides, data_dir, device) -> None:
    """Evaluate a saved run's final model with its (or overridden) eval metrics; writes RUN_DIR/eval.json."""
    from .config import check_device
    from .evaluation import evaluate_run

    if device is not None:
        check_device(device, "--device")
    results = evaluate_run(run_dir, overrides=overrides, data_dir=data_dir, device=device)
    click.echo(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in results.items()}))


@main.command(name="list")
@click.argument("what", required=False, type=click.Choice(["models", "datasets", "metrics", "sections", "plots"]))
def list_cmd(what) -> None:
    """Print what is registered, with each entry's settable parameters and defaults; the keys of the
    train, eval and sweep sections with their defaults; the plot kinds of `vaeray plot`."""
    import dataclasses

    from .config import EvalConfig, TrainConfig
    from .registry import DATASETS, METRICS, MODELS, load_all
    from .report.api import family_of
    from .sweep.settings import SweepSettings

    load_all()
    for title, reg in (("models", MODELS), ("datasets", DATASETS), ("metrics", METRICS)):
        if what and what != title:
            continue
        click.echo(f"{title}:")
        for name in reg:
            params = ", ".join(f"{k}={v!r}" for k, v in reg.defaults(name).items())
            family = f"  [{family_of(name)}]" if reg is MODELS else ""
            click.echo(f"  {name}({params}){family}")
    if not what or what == "sections":
        for title, cls in (("train", TrainConfig), ("eval", EvalConfig), ("sweep", SweepSettings)):
            click.echo(f"{title}:")
            for f in dataclasses.fields(cls):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                click.echo(f"  {f.name}: {default!r}")
    if not what or what == "plots":
        from .report.plots import PLOTS, VIEWS

        import importlib

        for module in VIEWS:
            importlib.import_module(module)
        click.echo("plots:")
        for name, (_, help_text) in PLOTS.items():
            click.echo(f"  {name}: {help_text}")


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate, print the trial matrix and resources; run nothing.")
@click.option("--restart", is_flag=True, help="Discard this sweep's previous state and start afresh.")
@_data_dir_option
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray, or $RAY_ADDRESS).")
@click.option("--storage", default=None, help="Override sweep.storage (local path or s3://, gs:// URI).")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a value of the sweep file (repeatable), e.g. train.steps=200 or sweep.seeds=[0].",
)
def sweep(sweep_file, dry_run, restart, data_dir, address, storage, overrides) -> None:
    """Run (or resume) a sweep file on Ray Tune."""
    from .sweep.spec import load

    spec = load(sweep_file, storage=storage, overrides=overrides)
    if dry_run:
        # Only a named cluster is asked for its resources (that needs Ray); otherwise this machine's count.
        cluster = None
        if address or os.environ.get("RAY_ADDRESS"):
            from .sweep.ray.local import cluster_view

            cluster = cluster_view(address)
        from .sweep.dryrun import dry_run_report

        click.echo(dry_run_report(spec, cluster=cluster))
        return
    from .errors import TrialsFailed
    from .sweep.ray.runner import SweepInterrupted, run_sweep

    try:
        summary = run_sweep(spec, restart=restart, data_dir=data_dir, address=address)
    except SweepInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)
    except TrialsFailed as e:  # the results first, then one line per failed trial, then why the exit code
        click.echo(e.summary)
        for tid, reason in e.failures:
            click.echo(f"failed {tid}: {reason}", err=True)
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    click.echo(summary)


@main.command()
@click.argument("sweeps", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write the tables (CSV, LaTeX) and figures (PNG) here.")
@click.option("--storage", default=None, help="Where sweep names are looked up (default: $VAERAY_STORAGE, else ~/vaeray_results).")
@click.option("--metric", default=None, help="Rank by this metric (default: the sweep's sweep.metric).")
@click.option("--mode", type=click.Choice(["min", "max"]), default=None)
@click.option("--no-progress", is_flag=True, help="No progress bar while reading.")
def report(sweeps, out, storage, metric, mode, no_progress) -> None:
    """Comparison tables of one or more sweeps (names, directories or URIs): Markdown on stdout; with --out
    also CSV, LaTeX (booktabs) and PNG figures."""
    from .report.compose import build

    def progress(items, desc, total):
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, total=total, unit="trial", leave=False, file=sys.stderr, disable=no_progress or total < 50)

    result = build(list(sweeps), out=out, storage=storage, metric=metric, mode=mode, progress=progress)
    click.echo(result.markdown, nl=False)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.argument("kind")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Default: RUN_DIR/plots/KIND.png (.gif for GIFs).")
@click.option("--mode", type=click.Choice(["prior", "posterior"]), default="posterior", help="Traversal centre.")
@click.option("--range", "range_", type=click.Choice(["symmetric", "quantiles"]), default="symmetric", help="Traversal range.")
@click.option("--span", type=float, default=2.0, help="Symmetric range: ± this many prior standard deviations.")
@click.option("--steps", type=int, default=9, help="Traversal steps.")
@click.option("--n", "n", type=int, default=8, help="Grid side (samples, data, reconstructions).")
@click.option("--dims", type=int, default=None, help="At most this many latent dimensions (highest KL first).")
@click.option("--index", type=int, default=0, help="The data example a posterior traversal starts from.")
@click.option("--seed", type=int, default=0)
@click.option("--import", "imports", multiple=True, metavar="MODULE", help="Module registering the run's own model/data.")
@_data_dir_option
@click.option("--device", default=None)
def plot(run_dir, kind, out, mode, range_, span, steps, n, dims, index, seed, imports, data_dir, device) -> None:
    """Plot a trained run (a `vaeray train` run directory, a sweep trial directory or a checkpoint):
    KIND is one of `vaeray list plots` (samples, data, reconstructions, traversals, reconstruct_traverse,
    traversal_gif, and each family's own views)."""
    from .report import plots

    opts = plots.PlotOptions(n=n, mode=mode, range=range_, span=span, steps=steps, dims=dims, index=index, seed=seed)
    result = plots.make(run_dir, kind, opts, device=device, data_dir=data_dir, imports=tuple(imports))
    base = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    path = plots.save(result, out or base / "plots" / kind)
    click.echo(str(path))


# Exit codes (README and docs/reliability.md keep the same table).
EXIT_OK = 0
EXIT_BUG = 1  # an unforeseen error: one line naming it; VAERAY_DEBUG=1 or --debug shows the traceback
EXIT_INPUT = 2  # invalid config, sweep file, flag or argument (ConfigError, usage errors)
EXIT_IO = 7  # the operating system refused: permission denied, disk full, unreadable path
EXIT_INTERRUPTED = 130
# 3 data missing, 4 unreadable checkpoint, 5 divergence, 6 sweep finished with failed trials: the
# exit_code of the VaerayError subclass (vaeray.errors).


def _line(text: str, limit: int = 400) -> str:
    """One line however many the message had (a terminal and a log grep both want one)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: every failure is one line on stderr and a documented exit code.

    A traceback only for bugs, and only when asked (``--debug`` anywhere on the command line, or
    ``VAERAY_DEBUG=1``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("VAERAY_DEBUG")) or "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        main.main(args=args, prog_name="vaeray", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as e:  # --help, --version
        sys.exit(e.exit_code)
    except click.ClickException as e:  # usage errors: click's own text is several lines; ours is one
        hint = ""
        ctx = getattr(e, "ctx", None)
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        click.echo(f"error: {_line(e.format_message())}{hint}", err=True)
        sys.exit(EXIT_INPUT if isinstance(e, click.UsageError) else e.exit_code)
    except VaerayError as e:
        click.echo(f"error: {_line(str(e))}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; finished results and the last checkpoint are kept", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except RecursionError:  # before OSError/Exception: it is a RuntimeError too
        if debug:
            raise
        click.echo("error: input nested too deeply to process", err=True)
        sys.exit(EXIT_INPUT)
    except OSError as e:
        if debug:
            raise
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        click.echo(f"error: {_line(e.strerror or str(e) or type(e).__name__)}{where}", err=True)
        sys.exit(EXIT_IO)
    except Exception as e:  # a bug: keep it to one line unless asked
        if debug:
            raise
        msg = _line(str(e)) or "(no message)"
        click.echo(f"error: unexpected {type(e).__name__}: {msg} (rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_BUG)
