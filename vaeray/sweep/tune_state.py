"""Whether the state Ray Tune saved for an experiment survived the interruption whole.

Tune rewrites its snapshots in place while an experiment runs: ``experiment_state-<session>.json`` (every
trial's status, JSON), the grid searcher's ``basic-variant-state-<session>.json`` (a pickle) and, once,
``tuner.pkl``. It
uploads them to the storage path with a plain copy (``pyarrow.fs.copy_files``), not a write-and-rename, so a
driver killed during an upload leaves an empty or cut-off file. ``Tuner.restore`` then logs "Failed to restore
the run state", starts the experiment afresh from its stored settings and, with vaeray's restored callbacks,
fails. Reading the files first (no Ray needed) lets the runner abandon such an experiment the way it abandons
one Tune never saved: its finished trials stay in the ledger and the rest run again in a new experiment.
"""

from __future__ import annotations

import fnmatch
import pickletools

from ..storage import join_uri, list_dir, read_bytes, read_json

# Tune restores from the newest file of each pattern (the names sort by session time). The experiment state is
# JSON; the grid searcher's state, despite its name, and the tuner are pickles.
JSON_SNAPSHOTS = ("experiment_state-*.json",)
PICKLE_SNAPSHOTS = ("basic-variant-state-*.json", "tuner.pkl")


def _whole_pickle(data: bytes) -> bool:
    """Every opcode through STOP is there, checked by walking them (``pickletools``: nothing is imported or
    built, so Ray stays out of this module)."""
    try:
        for _ in pickletools.genops(data):
            pass
    except ValueError:  # "pickle exhausted before seeing STOP", or a byte that is no opcode
        return False
    return bool(data)


def torn_snapshots(experiment_uri: str) -> list[str]:
    """Names of the files under ``experiment_uri`` that Tune would restore from but cannot read whole (the
    newest of each kind). Empty when the experiment's state is whole or absent (absence is
    ``Tuner.can_restore``'s question)."""
    names = list_dir(experiment_uri)
    torn = []
    for patterns, whole in (
        (JSON_SNAPSHOTS, lambda uri: isinstance(read_json(uri), dict)),  # read_json: None for a damaged file
        (PICKLE_SNAPSHOTS, lambda uri: _whole_pickle(read_bytes(uri) or b"")),
    ):
        for pattern in patterns:
            matching = sorted(fnmatch.filter(names, pattern))
            if matching and not whole(join_uri(experiment_uri, matching[-1])):
                torn.append(matching[-1])
    return torn
