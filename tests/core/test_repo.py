"""Repository promises: the README's Quick start has two commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from vaeray.sweep import spec as sw

REPO = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "vaeray sweep sweeps/quickstart.yaml" in commands[0]
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == commands[1]


def test_shipped_sweep_files_validate():
    for path in sorted((REPO / "sweeps").glob("*.yaml")):
        spec = sw.load(path)
        assert spec.trials(), path
