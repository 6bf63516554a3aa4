"""A failed trial's reason, as one line: the exception message, not the traceback."""

from __future__ import annotations

from vaeray.errors import last_exception_line


def test_error_line_is_the_exception_message_not_the_traceback():
    text = (
        "Failure # 1 (occurred at 2026-11-21)\n"
        "ray::ImplicitFunc.train() (pid=1, ip=1.2.3.4)\n"
        "Traceback (most recent call last):\n"
        '  File "vaeray/train.py", line 149, in fit\n'
        "vaeray.errors.DivergenceError: the loss diverged at step 7: loss became nan (lower train.lr, ...)\n"
    )
    assert last_exception_line(text) == "the loss diverged at step 7: loss became nan (lower train.lr, ...)"
    assert last_exception_line("...\nRuntimeError: CUDA out of memory.") == "RuntimeError: CUDA out of memory."
