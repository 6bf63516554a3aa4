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
    run = RunDir(run_dir or Path("runs") / Path(config_file).stem)
    state = run.prepare(cfg, resume)
    final: dict = {}

    def report(metrics, ckpt):
        run.report(metrics, ckpt)
        if ckpt is not None:
            final["state"] = ckpt

    metrics = fit(cfg, report=report, checkpoint=state, data_dir=data_dir, device=device, progress=not no_progress)
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
    from .evaluation import evaluate_run

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
            from .sweep.ray.runner import cluster_view

            cluster = cluster_view(address)
        from .sweep.dryrun import dry_run_report

        click.echo(dry_run_report(spec, cluster=cluster))
        return
    from .sweep.ray.runner import SweepInterrupted, run_sweep

    try:
        summary = run_sweep(spec, restart=restart, data_dir=data_dir, address=address)
    except SweepInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)
    click.echo(summary)


def run() -> None:
    """Console-script entry point: one line per user error, a traceback only for bugs (or VAERAY_DEBUG=1)."""
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except VaerayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; finished results and the last checkpoint are kept", err=True)
        sys.exit(130)
    except Exception as e:  # a bug: keep it to one line unless asked
        if os.environ.get("VAERAY_DEBUG"):
            raise
        click.echo(f"error: {type(e).__name__}: {e} (set VAERAY_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
