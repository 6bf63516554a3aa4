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
    from .train import fit

    cfg = config_mod.load(config_file, overrides)
    if device is not None:
        config_mod.check_device(device, "--device")
    run = RunDir(run_dir or Path("runs") / Path(config_file).stem)
    state = run.check(resume)  # reads only: nothing is written before fit says the run has started
    for note in run.notes:
        click.echo(f"warning: {note}", err=True)
    final: dict = {}

    def report(metrics, ckpt):
        run.report(metrics, ckpt)
        if ckpt is not None:
            final["state"] = ckpt

    metrics = fit(
        cfg, report=report, checkpoint=state, data_dir=data_dir, device=device, progress=not no_progress,
        started=run.start,
    )  # fmt: skip
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
@click.argument("what", required=False, type=click.Choice(["models", "datasets", "metrics"]))
def list_cmd(what) -> None:
    """Print what is registered, with each entry's settable parameters and defaults."""
    from .registry import DATASETS, METRICS, MODELS, load_all

    load_all()
    for title, reg in (("models", MODELS), ("datasets", DATASETS), ("metrics", METRICS)):
        if what and what != title:
            continue
        click.echo(f"{title}:")
        for name in reg:
            params = ", ".join(f"{k}={v!r}" for k, v in reg.defaults(name).items())
            click.echo(f"  {name}({params})")


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate, print the trial matrix and resources; run nothing.")
@click.option("--restart", is_flag=True, help="Discard this sweep's previous state and start afresh.")
@_data_dir_option
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray, or $RAY_ADDRESS).")
@click.option("--storage", default=None, help="Override sweep.storage (local path or s3://, gs:// URI).")
def sweep(sweep_file, dry_run, restart, data_dir, address, storage) -> None:
    """Run (or resume) a sweep file on Ray Tune."""
    from .sweep.spec import load

    spec = load(sweep_file, storage=storage)
    if dry_run:
        # Only a named cluster is asked for its resources (that needs Ray); otherwise this machine's count.
        cluster = None
        if address or os.environ.get("RAY_ADDRESS"):
            from .sweep.ray.runner import cluster_view

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
