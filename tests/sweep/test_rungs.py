"""Seed-grouped early stopping (vaeray.sweep.rungs, no Ray): decisions per configuration on the seed mean, seeds
together; the book survives a restored driver."""

from __future__ import annotations

import json

import pytest

from vaeray.sweep.rungs import RungBook, SavedBook

C, W, S = RungBook.CONTINUE, RungBook.WAIT, RungBook.STOP


def test_first_seed_waits_until_its_siblings_reach_the_rung():
    book = RungBook([10, 30], "asha", "min", reduction_factor=2, default_members=[0, 1])
    assert book.observe("a", 0, 5, 1.0) == C
    assert book.observe("a", 0, 10, 1.0) == W  # seed 1 not there yet
    assert book.waiting_at("a", 0) == 10
    assert book.observe("a", 1, 10, 3.0) == C  # first configuration at the rung: nothing to beat
    assert book.recorded[10] == {"a": -2.0}  # mean of 1 and 3, sign-adjusted for mode=min
    assert book.waiting_at("a", 0) is None and book.decided("a", 10)


def test_asha_rule_applies_to_seed_means_and_stops_all_seeds():
    book = RungBook([10], "asha", "min", reduction_factor=2, default_members=[0, 1])
    for seed, loss in ((0, 1.0), (1, 3.0)):
        book.observe("good", seed, 10, loss)
    # seed 0 of 'bad' alone is better than 'good''s mean, but the configuration's mean is worse
    assert book.observe("bad", 0, 10, 1.5) == W
    assert book.observe("bad", 1, 10, 4.5) == S
    assert book.stopped == {"bad": 10}
    assert book.observe("bad", 0, 20, 0.1) == S  # its paused/running siblings stop too
    # a configuration better than the cutoff continues
    book.observe("best", 0, 10, 0.5)
    assert book.observe("best", 1, 10, 0.7) == C


def test_decisions_use_the_value_at_the_rung_even_if_reports_skip_it():
    book = RungBook([10, 20], "asha", "max", reduction_factor=2, default_members=[0])
    assert book.observe("a", 0, 25, 5.0) == C  # one report past two rungs: recorded at both
    assert book.recorded == {10: {"a": 5.0}, 20: {"a": 5.0}}
    assert book.observe("b", 0, 12, 1.0) == S  # worse than a at rung 10 (max mode)


def test_non_finite_values_are_not_recorded():
    book = RungBook([10], "asha", "min", default_members=[0])
    assert book.observe("a", 0, 10, float("nan")) == C
    assert book.recorded[10] == {}
    assert book.observe("a", 0, 20, 2.0) == C
    assert book.recorded[10] == {"a": -2.0}


def test_an_errored_seed_no_longer_holds_back_its_configuration():
    book = RungBook([10], "asha", "min", reduction_factor=2, default_members=[0, 1, 2])
    book.observe("good", 0, 10, 1.0), book.observe("good", 1, 10, 1.0), book.observe("good", 2, 10, 1.0)
    assert book.observe("bad", 0, 10, 5.0) == W
    assert book.observe("bad", 1, 10, 5.0) == W
    book.forget("bad", 2)  # seed 2 failed for good: judge on seeds 0 and 1
    assert book.stopped == {"bad": 10}


def test_members_restrict_a_configuration_to_the_seeds_of_this_experiment():
    # an extension experiment runs only seed 5 of an old configuration: it must not wait for seeds 0 and 1
    book = RungBook([10], "asha", "min", members={"old": [5]}, default_members=[0, 1, 5])
    assert book.observe("old", 5, 10, 1.0) == C
    assert book.observe("new", 0, 10, 1.0) == W


def test_median_rule_needs_enough_other_configurations():
    book = RungBook([10], "median", "min", min_samples_required=2, default_members=[0])
    assert book.observe("a", 0, 10, 1.0) == C
    assert book.observe("b", 0, 10, 3.0) == C  # only one other configuration recorded
    assert book.observe("c", 0, 10, 2.5) == S  # worse than the median of a and b (2.0)
    assert book.observe("d", 0, 10, 1.5) == C


def test_book_survives_a_round_trip_through_json():
    book = RungBook([10, 30], "asha", "min", reduction_factor=2, default_members=[0, 1])
    book.observe("a", 0, 10, 1.0), book.observe("a", 1, 10, 1.0)
    book.observe("b", 0, 10, 9.0), book.observe("b", 1, 10, 9.0)
    book.observe("c", 0, 30, 2.0)
    book.forget("c", 1)
    again = RungBook([10, 30], "asha", "min", reduction_factor=2, default_members=[0, 1])
    again.load_json(json.loads(json.dumps(book.to_json())))
    assert again.recorded == book.recorded and again.stopped == book.stopped == {"b": 10}
    assert again.values == book.values and again.failed == book.failed
    assert again.observe("b", 1, 40, 0.0) == S


def test_saved_book_is_written_when_it_changes_and_read_back_by_a_new_driver(tmp_path, monkeypatch):
    uri = str(tmp_path / "exp-001" / "vaeray_rungs.json")
    saved = SavedBook(RungBook([10], "asha", "min", reduction_factor=2, default_members=[0, 1]), uri)
    saved.load()  # nothing stored yet: an empty book
    saved.book.observe("a", 0, 10, 1.0)
    saved.waiting["tune-trial-1"] = 10
    saved.save()
    writes = []
    monkeypatch.setattr("vaeray.storage.write_json", lambda *a: writes.append(a))
    saved.save()  # unchanged: no second write (each one is a PUT on object stores)
    assert writes == []
    monkeypatch.undo()
    restored = SavedBook(RungBook([10], "asha", "min", reduction_factor=2, default_members=[0, 1]), uri)
    restored.load()
    assert restored.waiting == {"tune-trial-1": 10} and restored.book.values == saved.book.values
    assert restored.book.observe("a", 1, 10, 3.0) == C  # the second seed completes the rung


@pytest.mark.parametrize("mode", ["min", "max"])
def test_asha_keeps_roughly_the_top_fraction(mode):
    """With many configurations arriving in random order, about 1/rf survive the rung (the ASHA promise)."""
    import numpy as np

    rng = np.random.default_rng(0)
    book = RungBook([10], "asha", mode, reduction_factor=3, default_members=[0])
    kept = sum(book.observe(f"c{i}", 0, 10, float(v)) == C for i, v in enumerate(rng.normal(size=300)))
    assert 0.25 < kept / 300 < 0.45
