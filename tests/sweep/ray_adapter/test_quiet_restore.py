"""The log filters that keep a resumed sweep's terminal free of Ray's and Tune's internal warnings (issue 14,
item 5; the end-to-end checks are in test_resume_cli.py and test_interrupted_early_stopping.py)."""

from __future__ import annotations

import logging

from vaeray.sweep.ray.local import _no_token_notice
from vaeray.sweep.ray.runner import _quiet_tune


def emitted(logger: str, message: str, caplog) -> bool:
    caplog.clear()
    logging.getLogger(logger).warning(message)
    return any(r.getMessage() == message for r in caplog.records)


def test_tune_restore_warnings_are_dropped_only_while_tune_runs(caplog):
    caplog.set_level(logging.WARNING)
    fetch = "Failed to fetch metrics for 2 trial(s):\n- a-s1: FileNotFoundError('Could not fetch metrics for a-s1')"
    other = "Something else Tune warns about"
    with _quiet_tune():
        assert not emitted("ray.tune.analysis.experiment_analysis", fetch, caplog)
        assert not emitted("ray.tune.tune", "Resume experiment with: Tuner.restore(path=...)", caplog)
        assert not emitted("ray.tune.logger.logger", "Remote file not found: /r/exp-001/a-s1/result.json", caplog)
        assert emitted("ray.tune.analysis.experiment_analysis", other, caplog)  # other warnings still show
    assert emitted("ray.tune.analysis.experiment_analysis", fetch, caplog)  # removed afterwards


def test_only_the_token_enabled_notice_is_dropped():
    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("ray", logging.WARNING, __file__, 1, msg, None, None)

    assert not _no_token_notice(record("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=..."))
    assert _no_token_notice(record("Token authentication is disabled for this Ray cluster. Anyone with network ..."))
