"""YAML reading with two fixes for research configs.

PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a *string*; every researcher writes ``lr: 1e-3``, so we
add a resolver that reads it as a float. Errors come back as one line naming the file, line and column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


MAX_DEPTH = 32  # a run config is 4 levels deep; anything much deeper is a mistake (or an attack on the parser)
MAX_NODES = 200_000  # counted with aliases expanded: a "billion laughs" file is refused, not expanded
MAX_BYTES = 4 << 20


def loads(text: str, source: str = "<string>") -> Any:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}invalid YAML ({' '.join(str(problem).split())})", source=source) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"nested too deeply (more than {MAX_DEPTH} levels)", source=source) from None
    check_shape(data, source)
    return data


def check_shape(data: Any, source: str) -> None:
    """Refuse structures deeper than MAX_DEPTH or larger than MAX_NODES (aliases counted each time they are
    used), iteratively: validation, deepcopy and JSON would otherwise recurse or blow up on them later."""
    stack = [(data, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ConfigError(f"too large: more than {MAX_NODES} values (YAML aliases included)", source=source)
        if isinstance(node, dict):
            children = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= MAX_DEPTH and children:
            raise ConfigError(f"nested too deeply (more than {MAX_DEPTH} levels)", source=source)
        stack.extend((c, depth + 1) for c in children)


def load(path: str | Path) -> Any:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"too large for a config file ({path.stat().st_size} bytes; at most {MAX_BYTES})", source=str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", source=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read file ({e.strerror or type(e).__name__})", source=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})", source=str(path)) from None
    if "\x00" in text:
        raise ConfigError("not a text file (it contains NUL bytes)", source=str(path))
    return loads(text, source=str(path))


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=None)
