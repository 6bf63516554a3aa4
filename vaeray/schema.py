"""Type and range checks driven by signatures.

A registered constructor's annotations are the schema of its config section. Ranges ride along as
``typing.Annotated`` metadata::

    def __init__(self, beta: Annotated[float, Range(ge=0)] = 4.0, rec_dist: Literal["bernoulli", "laplace"] = ...)

:func:`check` validates (and gently coerces: an ``int`` where a ``float`` is wanted, the string ``"1e-3"`` that
PyYAML reads from ``lr: 1e-3``) one value against one annotation and raises :class:`ConfigError` naming the key
path.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal, Union

from .errors import ConfigError, clip, did_you_mean


@dataclass(frozen=True)
class Range:
    """Inclusive (``ge``/``le``) or exclusive (``gt``/``lt``) numeric bounds."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def check(self, value: float, path: str) -> None:
        bad = (
            (self.ge is not None and value < self.ge, f">= {self.ge}"),
            (self.gt is not None and value <= self.gt, f"> {self.gt}"),
            (self.le is not None and value > self.le, f"<= {self.le}"),
            (self.lt is not None and value >= self.lt, f"< {self.lt}"),
        )
        for failed, want in bad:
            if failed:
                raise ConfigError(f"{_short(value)} is out of range: must be {want}", path)


INT64 = 2**63
# Sane bounds shared by the schemas: a layer width or latent size past 65,536 is a typo, and an attempt to
# allocate it would fail (or swap for minutes) only after the run started.
Width = typing.Annotated[int, Range(ge=1, le=1 << 16)]
Depth = typing.Annotated[int, Range(ge=1, le=64)]
Beta = typing.Annotated[float, Range(ge=0, lt=1)]  # an Adam beta, as torch.optim checks it


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value still gives one short line."""
    return clip(repr(value), limit)


def _type_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(ann))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(ann))
    if origin is typing.Annotated:
        return _type_name(typing.get_args(ann)[0])
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(ann) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if ann is type(None):
        return "null"
    return getattr(ann, "__name__", str(ann))


def check(value: Any, ann: Any, path: str) -> Any:
    """Return ``value`` (possibly coerced) if it fits ``ann``, else raise ConfigError."""
    if ann is inspect.Parameter.empty or ann is Any:
        return value
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(ann)
        value = check(value, base, path)
        for m in meta:
            if isinstance(m, Range) and value is not None:
                m.check(value, path)
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(ann):
            try:
                return check(value, option, path)
            except ConfigError as e:
                errors.append(e)
        for e in errors:  # right type, wrong value: say that, not "expected int | null"
            if "out of range" in str(e):
                raise e
        raise ConfigError(f"expected {_type_name(ann)}, got {_short(value)}", path)
    if origin is Literal:
        allowed = typing.get_args(ann)
        if value not in allowed:
            raise ConfigError(f"{_short(value)} is not allowed; {did_you_mean(str(value)[:100], map(str, allowed))}", path)
        return value
    if ann is type(None) or ann is None:
        if value is not None:
            raise ConfigError(f"expected null, got {_short(value)}", path)
        return None
    if ann is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true/false, got {_short(value)}", path)
        return value
    if ann is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"expected an integer, got {_short(value)}", path)
        if not -INT64 <= value < INT64:  # torch, numpy and Ray all overflow beyond 64 bits
            raise ConfigError(f"{_short(value)} is out of range: must fit in 64 bits (|value| < 2**63)", path)
        return value
    if ann is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"expected a number, got {_short(value)}", path) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {_short(value)}", path)
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{_short(value)} is out of range for a number", path) from None
        if math.isnan(value):
            raise ConfigError("expected a number, got NaN", path)
        if math.isinf(value):  # no setting of vaeray means anything at infinity (a missing bound is null)
            raise ConfigError(f"{value} is out of range: must be finite", path)
        return value
    if ann is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {_short(value)}", path)
        return value
    if origin in (list, tuple, Sequence) or ann in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {_short(value)}", path)
        args = typing.get_args(ann)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"expected {len(args)} values, got {len(value)}", path)
            out = [check(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item = args[0] if args else Any
            out = [check(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin in (dict, Mapping) or ann is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a mapping, got {_short(value)}", path)
        return dict(value)
    if isinstance(ann, type):
        if not isinstance(value, ann):
            raise ConfigError(f"expected {_type_name(ann)}, got {_short(value)}", path)
        return value
    return value


def signature_chain(fn: Any) -> list[Any]:
    """The callables whose parameters make up ``fn``'s schema.

    For a class: its ``__init__``, and while that forwards ``**kwargs`` to ``super().__init__``, the parents'
    ``__init__`` too. So a subclass declares only its own hyperparameters plus ``**base`` and still exposes
    the whole schema (a β-VAE's ``beta`` and every ``VAE`` argument) without repeating the parent's list.
    """
    if not isinstance(fn, type):
        return [fn]
    chain = []
    for klass in fn.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or init is object.__init__:
            continue
        chain.append(init)
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
            break
    return chain


def parameters(fn: Any) -> dict[str, inspect.Parameter]:
    """Named keyword parameters of ``fn`` along its :func:`signature_chain` (a subclass's first)."""
    out: dict[str, inspect.Parameter] = {}
    for target in signature_chain(fn):
        for name, p in inspect.signature(target).parameters.items():
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in out:
                out[name] = p
    return out


def hints(fn: Any) -> dict[str, Any]:
    """Resolved annotations (with ``Annotated`` extras) along ``fn``'s :func:`signature_chain`."""
    out: dict[str, Any] = {}
    for target in reversed(signature_chain(fn)):
        try:
            out.update(typing.get_type_hints(target, include_extras=True))
        except Exception:  # unresolvable forward references: those parameters go unchecked
            pass
    return out


def check_kwargs(fn: Any, params: Mapping[str, inspect.Parameter], given: Mapping[str, Any], path: str) -> dict:
    """Validate ``given`` against ``params`` (names, types, ranges); fill in defaults; return the resolved dict."""
    ann = hints(fn)
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in params:
            raise ConfigError(f"unknown key {_short(key)}; {did_you_mean(str(key)[:100], params)}", f"{path}.{key}" if path else key)
        out[key] = check(value, ann.get(key, params[key].annotation), f"{path}.{key}" if path else key)
    for key, p in params.items():
        if key not in out:
            if p.default is inspect.Parameter.empty:
                raise ConfigError("required key is missing", f"{path}.{key}" if path else key)
            out[key] = p.default
    return out


def check_dataclass(cls: type, given: Mapping[str, Any], path: str) -> dict:
    """:func:`check_kwargs` for a settings dataclass (``TrainConfig``, the ``sweep:`` section): its fields,
    with their defaults and annotations, are the schema."""
    params = {
        f.name: inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=f.default_factory() if f.default_factory is not MISSING else f.default,
            annotation=f.type,
        )
        for f in fields(cls)
    }
    return check_kwargs(cls, params, given, path)
