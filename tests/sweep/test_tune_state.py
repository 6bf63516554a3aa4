"""Tune's snapshots, torn or whole, read without Ray (vaeray.sweep.tune_state)."""

from __future__ import annotations

import json
import pickle

import pytest

from vaeray.sweep.tune_state import torn_snapshots

WHOLE_JSON = json.dumps({"trial_data": [], "runner_data": {}, "stats": {}}).encode()
WHOLE_PICKLE = pickle.dumps({"iterators": list(range(50)), "text": "x" * 300}, protocol=5)
STATE, SEARCH = "experiment_state-2026-01-02_00-00-00.json", "basic-variant-state-2026-01-02_00-00-00.json"


def experiment(tmp_path, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return str(tmp_path)


def test_whole_state_and_no_state_are_not_torn(tmp_path):
    assert torn_snapshots(str(tmp_path / "missing")) == []
    files = {STATE: WHOLE_JSON, SEARCH: WHOLE_PICKLE, "tuner.pkl": WHOLE_PICKLE}
    assert torn_snapshots(experiment(tmp_path, files)) == []


@pytest.mark.parametrize("damage", [b"", WHOLE_JSON[: len(WHOLE_JSON) // 2], b"\xff\xfe", b"[1, 2]", b"null"])
def test_a_torn_experiment_state(tmp_path, damage):
    files = {"experiment_state-2026-01-01_00-00-00.json": WHOLE_JSON, STATE: damage, SEARCH: WHOLE_PICKLE}
    assert torn_snapshots(experiment(tmp_path, files)) == [STATE]


@pytest.mark.parametrize("cut", [0, 1, 100, len(WHOLE_PICKLE) // 2, len(WHOLE_PICKLE) - 1])
def test_pickles_cut_anywhere_are_torn(tmp_path, cut):
    files = {STATE: WHOLE_JSON, SEARCH: WHOLE_PICKLE[:cut], "tuner.pkl": WHOLE_PICKLE[:cut]}
    assert torn_snapshots(experiment(tmp_path, files)) == [SEARCH, "tuner.pkl"]


def test_only_the_newest_snapshot_of_a_kind_counts(tmp_path):
    files = {"experiment_state-2026-01-01_00-00-00.json": b"", STATE: WHOLE_JSON,
             "basic-variant-state-2026-01-01_00-00-00.json": b"", SEARCH: WHOLE_PICKLE}  # fmt: skip
    assert torn_snapshots(experiment(tmp_path, files)) == []
