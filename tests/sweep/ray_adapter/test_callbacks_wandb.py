"""W&B: one offline run per trial, grouped per configuration; no account needed; the key is never written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vaeray.sweep import settings
from vaeray.sweep import spec as sw
from vaeray.sweep.ray.callbacks import wandb_callback
from vaeray.sweep.ray.runner import run_sweep

SECRET = "vaeray-test-secret-0123456789abcdef0123456789abcdef"


def test_wandb_offline_one_run_per_trial_grouped_and_no_key_on_disk(ray_local, make_sweep, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET)  # present, yet mode: offline must not use or store it
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = sw.load(make_sweep("wb", train={"steps": 20}, sweep={"wandb": {"mode": "offline", "project": "vaeray-tests"}}))
    run_sweep(spec, verbose=0)
    root = Path(spec.root)
    runs = sorted((root / "wandb").glob("offline-run-*"))  # kept with the sweep, ready for `wandb sync`
    assert len(runs) == len(spec.trials()) == 2
    # W&B's own service process writes the .wandb files asynchronously; under load it may still be flushing
    # when Tune returns, so give it a bounded moment to finish before reading them.
    deadline = time.monotonic() + 60
    while True:
        logs = [b"".join(p.read_bytes() for p in r.glob("run-*.wandb")) for r in runs]
        done = all(any(t.trial_id.encode() in log for log in logs) for t in spec.trials())
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    for t in spec.trials():
        mine = [log for log in logs if t.trial_id.encode() in log]  # the run name is the trial id
        assert len(mine) == 1, t.trial_id
        assert f"wb-{t.cell}".encode() in mine[0]  # the W&B group: sweep name + configuration hash
        assert b"loss" in mine[0] and b"step" in mine[0]  # metrics were logged and flushed
    leaked = [p for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []


def test_wandb_off_adds_no_callback_and_auto_mode_is_offline_without_a_key(make_sweep, monkeypatch):
    notes: list[str] = []
    assert wandb_callback(sw.load(make_sweep("none")), notes) is None  # no wandb section: off
    assert wandb_callback(sw.load(make_sweep("off", sweep={"wandb": {"mode": "off"}})), notes) is None
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cb = wandb_callback(sw.load(make_sweep("auto", sweep={"wandb": {"project": "p"}})), notes)
    assert cb.kwargs["mode"] == "offline" and cb._upload_timeout <= 120
    monkeypatch.setattr(settings, "wandb_logged_in", lambda: False)
    cb = wandb_callback(sw.load(make_sweep("online", sweep={"wandb": {"mode": "online"}})), notes)
    assert cb.kwargs["mode"] == "offline" and any("logging offline" in n for n in notes)  # never a login prompt


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_mode_with_a_key(make_sweep, monkeypatch, mode):
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setattr(settings, "wandb_reachable", lambda: True)  # (the test machine has no network)
    cb = wandb_callback(sw.load(make_sweep(mode, sweep={"wandb": {"mode": mode}})), [])
    assert cb.kwargs["mode"] == mode and cb.api_key is None  # the key stays in the environment only


def test_online_without_a_network_says_so_and_logs_offline(make_sweep, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:1")  # nobody listens on port 1
    notes: list[str] = []
    cb = wandb_callback(sw.load(make_sweep("unreachable", sweep={"wandb": {"mode": "online"}})), notes)
    assert cb.kwargs["mode"] == "offline"
    assert notes == ["W&B: 127.0.0.1:1 is unreachable; logging offline (upload later with `wandb sync`)"]
