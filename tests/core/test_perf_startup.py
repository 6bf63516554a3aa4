"""Start-up stays light: the CLI's help, ``vaeray list``, config validation and a sweep's dry run import none
of the heavy optional libraries (sklearn, scipy, ray, wandb, matplotlib); they load only when a metric, a
sweep or a plot runs. Not a timing: a fresh interpreter, then ``sys.modules``. (The times are in
docs/benchmarks.md, from benchmarks/bench_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "ray", "wandb", "matplotlib")

CHILD = r"""
import contextlib, io, json, sys
heavy = json.loads(sys.argv[1])
loaded = lambda: sorted(m for m in heavy if m in sys.modules)
seen = {}
from vaeray.cli import main

def cli(*args):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main.main(args=list(args), standalone_mode=False)
        except SystemExit:
            pass
    return out.getvalue()

assert "Usage" in cli("--help")
seen["help"] = loaded()
listing = cli("list")
assert "beta_tcvae(" in listing and "mig(" in listing and "dci(" in listing, listing  # signatures are there
seen["list"] = loaded()
from vaeray import config
cfg = config.validate(config.load("configs/dsprites_vae.yaml", ["eval.metrics.dci.num_train=100"]))
assert cfg["eval"]["metrics"]["dci"]["num_train"] == 100
try:  # a bad metric argument is still caught by validation (the metric's signature, without sklearn)
    config.validate(config.load("configs/dsprites_vae.yaml", ["eval.metrics.sap.num_train=-3"]))
    raise AssertionError("sap.num_train=-3 was accepted")
except config.ConfigError:
    pass
seen["validate"] = loaded()
assert "trials" in cli("sweep", "sweeps/betatcvae_dsprites.yaml", "--dry-run").lower()
seen["dry-run"] = loaded()
print(json.dumps(seen))
"""


def test_help_list_validation_and_dry_run_import_no_heavy_library():
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(HEAVY)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"help": [], "list": [], "validate": [], "dry-run": []}, seen

