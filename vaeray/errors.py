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
        # one line whatever the user typed: a key or value with a newline in it is shown escaped
        message = str(message).replace("\r", "\\r").replace("\n", "\\n")
        path = path.replace("\r", "\\r").replace("\n", "\\n") if isinstance(path, str) else path
        self.message = message  # the problem alone: re-raising it elsewhere (another path, a file) reuses it
        self.path = path
        self.source = source
        where = ""
        if source:
            where += f"{source}: "
        if path:
            where += f"{path}: "
        super().__init__(where + message)

    def in_file(self, source: str) -> ConfigError:
        """The same error, naming the file it is in (checks deep inside a sweep file know only the key path)."""
        return ConfigError(self.message, self.path, source)


class DataMissingError(VaerayError):
    """A dataset file is absent and cannot be downloaded; the message says which file to put where."""

    exit_code = 3


class CheckpointError(VaerayError):
    """A checkpoint that cannot be read (truncated, corrupt or from another config)."""

    exit_code = 4


class DivergenceError(VaerayError):
    """The training loss became NaN or infinite."""

    exit_code = 5


class TrialsFailed(VaerayError):
    """A sweep ran to its end but some trials failed; every result (and the failures' reasons) is written."""

    exit_code = 6

    def __init__(self, message: str, summary: str = "", failures: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.summary = summary
        self.failures = failures or []


# Failures that would happen again on a retry (same config, same seed, same step): never retried.
DETERMINISTIC = (ConfigError, DataMissingError, DivergenceError)


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters: cut after the last space or separator (``,:;/``)
    that keeps at least half of it, so messages are not cut mid-word (one unbroken token is cut where it must
    be), and marked with "..."."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = text[: limit - 3]
    cut = max(head.rfind(c) for c in " ,:;/")
    if cut >= (limit - 3) // 2:
        head = head[: cut + 1] if head[cut] != " " else head[:cut]
    return head.rstrip() + "..."


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"unknown model 'btcvea'; did you mean 'btcvae'? valid: ..."``-style suffix."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}valid: {', '.join(valid)}"


def last_exception_line(text: str) -> str:
    """The message of the last exception in a traceback's text (empty if there is no text).

    ``...Traceback...\\nvaeray.errors.DivergenceError: the loss diverged`` -> ``the loss diverged ...``: our own
    errors are already one line for the user, so their class name is dropped; others keep their short name
    (``RuntimeError: CUDA out of memory.``). Where no line looks like an exception, the last line, cut short.
    """
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    for ln in reversed(lines):
        head, sep, rest = ln.partition(": ")
        if sep and head.split(".")[-1].endswith(("Error", "Exception")) and " " not in head:
            return rest if head.startswith("vaeray.") else f"{head.split('.')[-1]}: {rest}"
    return lines[-1][:300]
