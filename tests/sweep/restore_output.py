"""What a resumed sweep may print on stderr (issue 14, item 5: "a restore does not print Tune's internal
warnings or stale-checkpoint errors"): vaeray's own progress lines and Ray's INFO lines, nothing else. So no
WARNING or ERROR line of Ray or Tune, no traceback, no raylet message, no multi-line exception repr."""

from __future__ import annotations

import re

VAERAY_LINE = re.compile(r"^\[vaeray \d\d:\d\d:\d\d\] ")
RAY_INFO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+INFO\s")
FORBIDDEN_ANYWHERE = re.compile(r"Traceback|stale|Error\b|exception", re.IGNORECASE)


def restore_noise(stderr: str) -> list[str]:
    """The lines of a rerun's stderr that should not be there."""
    return [
        line for line in stderr.splitlines()
        if line.strip() and (not (VAERAY_LINE.match(line) or RAY_INFO.match(line)) or FORBIDDEN_ANYWHERE.search(line))
    ]  # fmt: skip
