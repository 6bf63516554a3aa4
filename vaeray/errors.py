"""User-facing errors.

Anything a researcher can fix by editing a file or a flag (a typo in a sweep file, a missing dataset, a corrupt
checkpoint, a diverged loss) raises a subclass of :class:`VaerayError`. The CLI prints ``str(error)`` on one line
and exits with ``error.exit_code``; nothing else in the package catches these, so a library user sees them too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VaerayError(Exception):
    """Base class: a problem with the user's input, reported as one line."""

    exit_code = 1


class ConfigError(VaerayError):
    """An invalid run config or sweep file; ``path`` is the dotted key path (``model.beta``)."""

    exit_code = 2

    def __init__(self, message: str, path: str | None = None, source: str | None = None):
        self.path = path
        self.source = source
        where = ""
        if source:
            where += f"{source}: "
        if path:
            where += f"{path}: "
        super().__init__(where + message)


class DataMissingError(VaerayError):
    """A dataset file is absent and cannot be downloaded; the message says which file to put where."""

    exit_code = 3


class CheckpointError(VaerayError):
    """A checkpoint that cannot be read (truncated, corrupt or from another config)."""

    exit_code = 4


class DivergenceError(VaerayError):
    """The training loss became NaN or infinite."""

    exit_code = 5


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"unknown model 'btcvea'; did you mean 'btcvae'? valid: ..."``-style suffix."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}valid: {', '.join(valid)}"
