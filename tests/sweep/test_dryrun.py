"""The dry run: the trial matrix, the resources per trial and whether they fit; runs nothing."""

from __future__ import annotations

from tests.conftest import run_inprocess
from vaeray.sweep import spec as sw
from vaeray.sweep.dryrun import ClusterView, concurrency, dry_run_report
from vaeray.sweep.settings import Resources


def test_dry_run_prints_the_matrix_resources_and_fit(make_sweep, monkeypatch, capsys):
    path = make_sweep(model={"latent_dim": {"grid": [2, 3]}}, sweep={"resources": {"cpu": 1, "gpu": 0}})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", str(path), "--dry-run")
    assert code == 0, err
    spec = sw.load(path)
    header = next(line for line in out.splitlines() if line.strip().startswith("trial"))
    assert header.split() == ["trial", "model.latent_dim", "seed", "status"]
    for t in spec.trials():
        row = next(line for line in out.splitlines() if line.strip().startswith(t.trial_id))
        assert row.split() == [t.trial_id, str(t.config["model"]["latent_dim"]), str(t.seed), "to", "run"]
    assert "2 configurations x 2 seeds = 4 trials" in out
    assert "resources per trial: cpu 1, gpu 0" in out
    assert "fits: 2 trial(s) at a time" in out or "fits:" in out


def test_dry_run_says_when_a_trial_cannot_fit(make_sweep):
    spec = sw.load(make_sweep(sweep={"resources": {"cpu": 4, "gpu": 0.25}}))
    laptop = ClusterView("this machine", ((2.0, 0.0),))
    assert "does NOT fit" in dry_run_report(spec, cluster=laptop)
    gpu_box = ClusterView("cluster", ((8.0, 2.0), (0.0, 0.0)))
    report = dry_run_report(spec, cluster=gpu_box)
    assert "fits: 2 trial(s) at a time" in report  # 8 CPUs / 4 per trial, although 2 GPUs would take 8
    assert concurrency(Resources(cpu=1, gpu=0.25), gpu_box) == 8
