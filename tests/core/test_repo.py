"""Repository promises: the README's Quick start has two commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def laptop_lines() -> list[tuple[str, list[str]]]:
    """``# laptop: vaeray sweep FILE --set ...`` lines of the shipped paper sweeps: (file, overrides)."""
    import shlex

    found = []
    for path in sorted((REPO / "sweeps").glob("*.yaml")):
        for line in path.read_text().splitlines():
            if line.startswith("# laptop:"):
                words = shlex.split(line.removeprefix("# laptop:"))
                assert words[:3] == ["vaeray", "sweep", f"sweeps/{path.name}"], line
                assert all(w == "--set" for w in words[3::2]), line
                found.append((path.name, words[4::2]))
    return found


@pytest.mark.parametrize("name, overrides", laptop_lines(), ids=[n for n, _ in laptop_lines()])
def test_laptop_sizes_of_paper_sweeps_validate_and_shrink_the_sweep(name, overrides):
    full = sw.load(REPO / "sweeps" / name)
    small = sw.load(REPO / "sweeps" / name, overrides=overrides)
    assert small.trials() and len(small.trials()) <= len(full.trials())
    steps = lambda s: max(c.config["train"]["steps"] for c in s.configurations)  # noqa: E731
    assert steps(small) <= steps(full) and steps(small) <= 5000
