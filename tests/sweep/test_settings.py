"""The ``sweep:`` section: storage resolution and the scheduler's rungs."""

from __future__ import annotations

from vaeray.sweep import spec as sw
from vaeray.sweep.settings import SchedulerSpec


def test_storage_is_made_absolute_and_uris_are_kept(make_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = sw.load(make_sweep(sweep={"storage": "rel/out", "name": "n1"}))
    assert spec.root == str(tmp_path / "rel" / "out" / "n1")
    assert sw.load(make_sweep(sweep={"storage": "s3://bucket/sweeps/", "name": "n2"})).root == "s3://bucket/sweeps/n2"
    assert sw.load(make_sweep(sweep={"name": "n3"}), storage="gs://b/x").root == "gs://b/x/n3"


def test_asha_milestones_are_geometric_below_max_t():
    assert SchedulerSpec(name="asha", grace_period=10, reduction_factor=3, max_t=300).milestones() == [10, 30, 90, 270]
    assert SchedulerSpec(name="median", grace_period=10, interval=25, max_t=70).milestones() == [10, 35, 60]
    assert SchedulerSpec(name="none", grace_period=10, max_t=70).milestones() == []
