"""Malformed inputs: every one ends as one line and the documented exit code, with nothing written.

Two layers. Property tests (hypothesis) generate malformed run configs, sweep files, ``--set`` items and raw
file bytes and call the validation functions directly: each input is either accepted or refused with a
:class:`ConfigError` whose message is one line; no other exception escapes and no file appears. A table of the
failures found by hand (non-UTF-8 bytes, deep nesting, a top-level list, huge numbers, ±inf, values that used
to pass validation but fail when the model or data is built) goes through the real CLI entry point in this
process and checks the exit code, the single stderr line and that no run directory was made.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_inprocess, tiny_config
from vaeray import config as config_mod
from vaeray import yamlio
from vaeray.errors import ConfigError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["vae", "mlp", "burgess", "adam", "cpu", "cuda:0", "1e-3", "", "name"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.sampled_from(["name", "lr"]), inner, max_size=4),
    max_leaves=12,
)
# keys a run config really has, so mutations reach deep into the schemas and not just "unknown section"
PATHS = [
    ("seed",), ("model",), ("model", "name"), ("model", "latent_dim"), ("model", "hidden"), ("model", "net"),
    ("model", "beta"), ("model", "likelihood"), ("data",), ("data", "name"), ("data", "noise"), ("train",),
    ("train", "steps"), ("train", "batch_size"), ("train", "lr"), ("train", "betas"), ("train", "device"),
    ("train", "grad_clip"), ("train", "optimizer"), ("eval",), ("eval", "every"), ("eval", "metrics"),
    ("eval", "metrics", "mig"), ("eval", "metrics", "mig", "num_train"), ("bogus",), ("train", "bogus"),
]


def refused_in_one_line(fn, *args):
    """Call ``fn``; return True if it refused with a one-line ConfigError, False if it accepted."""
    try:
        fn(*args)
    except ConfigError as e:
        text = str(e)
        assert text and "\n" not in text and len(text) < 600, repr(text)
        return True
    return False


def set_path(cfg: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(cfg)
    node = out
    for k in path[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[path[-1]] = value
    return out


@SETTINGS
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_run_config_validation_accepts_or_refuses_in_one_line(mutations):
    cfg = tiny_config()
    for path, value in mutations:
        cfg = set_path(cfg, path, value)
    if not refused_in_one_line(config_mod.validate, cfg):
        # accepted: then it must really be buildable, which is what validation promises
        from vaeray.preflight import check_model

        check_model(config_mod.validate(cfg), (1, 32, 32))


@SETTINGS
@given(top=values)
def test_any_yaml_structure_as_a_whole_config(top):
    assert refused_in_one_line(config_mod.validate, top) or isinstance(top, dict)


@SETTINGS
@given(item=st.text(max_size=30) | st.sampled_from(["=", "a=", "=1", "model.=1", "..=2", "train.lr=[", "seed.x=1", "train.lr=.inf", "model={{"]))
def test_set_syntax(item):
    def apply():
        config_mod.validate(config_mod.apply_overrides(tiny_config(), [item]))

    refused_in_one_line(apply)


@SETTINGS
@given(data=st.binary(max_size=200) | st.sampled_from([b"", b"\xff\xfe", b"- 1\n", b"42", b"{a: [", b"\x00x: 1", b"a: " + b"[" * 100]))
def test_raw_file_bytes(tmp_path, data):
    f = tmp_path / "c.yaml"
    f.write_bytes(data)
    before = sorted(os.listdir(tmp_path))
    refused_in_one_line(config_mod.load, str(f))
    assert sorted(os.listdir(tmp_path)) == before  # reading writes nothing


SWEEP_PATHS = [
    ("sweep", "search"), ("sweep", "num_samples"), ("sweep", "seeds"), ("sweep", "metric"), ("sweep", "mode"),
    ("sweep", "scheduler"), ("sweep", "scheduler", "reduction_factor"), ("sweep", "scheduler", "grace_period"),
    ("sweep", "resources"), ("sweep", "resources", "cpu"), ("sweep", "max_concurrent"), ("sweep", "storage_x"),
    ("sweep", "name"), ("sweep", "wandb"), ("model", "latent_dim"), ("model", "latent_dim", "grid"),
    ("train", "lr", "loguniform"), ("train", "steps"), ("sweep",), ("bogus",),
]


@SETTINGS
@given(mutations=st.lists(st.tuples(st.sampled_from(SWEEP_PATHS), values), min_size=1, max_size=3))
def test_sweep_file_parsing_accepts_or_refuses_in_one_line(tmp_path, mutations):
    from vaeray.sweep.spec import parse

    body = {**tiny_config(), "sweep": {"seeds": [0, 1], "scheduler": {"name": "asha", "grace_period": 5}, "storage": str(tmp_path / "r")}}
    body.pop("seed")
    for path, value in mutations:
        body = set_path(body, path, value)
    refused_in_one_line(parse, body, "sw.yaml")
    assert not (tmp_path / "r").exists()  # parsing writes nothing


def test_yaml_bombs_and_depth_are_refused_without_expanding():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(ConfigError, match="too large"):
        yamlio.loads(bomb)
    with pytest.raises(ConfigError, match="nested too deeply"):
        yamlio.loads("a: " + "[" * 2000 + "]" * 2000)


BASE = "model: {name: vae, net: mlp, hidden: [8], latent_dim: 2}\ndata: {name: test_squares}\ntrain: {steps: 2}\n"
# (name, file bytes, extra CLI args, text the one line must contain): each failed differently before
CASES = [
    ("non-utf8", b"model: {name: vae}\ndata: \xff\xfe\n", [], "not UTF-8"),
    ("deep", ("a: " + "[" * 5000 + "]" * 5000).encode(), [], "nested too deeply"),
    ("top-list", b"- 1\n- 2\n", [], "is a mapping"),
    ("top-scalar", b"42\n", [], "is a mapping"),
    ("empty", b"", [], "empty"),
    ("huge-float", b"model: {name: vae, latent_dim: 1e400}\ndata: {name: test_squares}\n", [], "latent_dim"),
    ("huge-int", b"model: {name: vae, latent_dim: 99999999999999999999999999}\ndata: {name: test_squares}\n", [], "64 bits"),
    ("inf-lr", (BASE + "").encode(), ["--set", "train.lr=.inf"], "train.lr: inf is out of range: must be finite"),
    ("inf-beta", b"model: {name: beta_vae_h, beta: -.inf}\ndata: {name: test_squares}\n", [], "must be finite"),
    ("betas", BASE.encode(), ["--set", "train.betas=[1.5, 2]"], "train.betas[0]"),
    ("device", BASE.encode(), ["--set", "train.device=gpu0"], "train.device"),
    ("hidden-0", BASE.encode(), ["--set", "model.hidden=[0]"], "model.hidden[0]"),
    ("latent-huge", BASE.encode(), ["--set", "model.latent_dim=100000000000"], "model.latent_dim"),
    ("mnist-size", b"model: {name: vae}\ndata: {name: mnist, size: 3}\n", [], "data.size"),
    ("mnist-binarize", b"model: {name: vae}\ndata: {name: mnist, binarize: maybe}\n", [], "data.binarize"),
    ("dsprites-source", b"model: {name: vae}\ndata: {name: dsprites, source: web}\n", [], "data.source"),
    ("seed-huge", BASE.encode(), ["--set", "seed=100000000000000000000"], "seed"),
    ("metric-size", BASE.encode(), ["--set", "eval.metrics={mig: {num_train: 0}}"], "eval.metrics.mig.num_train"),
    ("shape", b"model: {name: vae, net: burgess}\ndata: {name: mnist, size: 20}\n", [], "model: cannot build this model for 1x20x20"),
    ("set-syntax", BASE.encode(), ["--set", "noequals"], "KEY=VALUE"),
    ("set-yaml", BASE.encode(), ["--set", "train.lr=["], "invalid YAML"),
    ("unknown-option", BASE.encode(), ["--bogus"], "No such option"),
    ("resume-missing", BASE.encode(), ["--resume"], "no run in"),
    ("device-flag", BASE.encode(), ["--device", "gpu0"], "--device: 'gpu0' is not a device"),
]


@pytest.mark.parametrize("name, body, extra, expected", CASES, ids=[c[0] for c in CASES])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, name, body, extra, expected):
    f = tmp_path / "c.yaml"
    f.write_bytes(body)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(tmp_path / "run"), "--no-progress", *extra)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no run directory, no runs/


def test_unforeseen_error_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    from vaeray import cli

    def boom(*a, **k):
        raise KeyError("multi\nline")

    monkeypatch.setattr(config_mod, "load", boom)
    code, _, err = run_inprocess(monkeypatch, capsys, "train", "x.yaml")
    assert code == cli.EXIT_BUG and len(err.strip().splitlines()) == 1
    assert err.startswith("error: unexpected KeyError: 'multi") and "--debug" in err


def test_os_error_is_one_line_exit_7(tmp_path, monkeypatch, capsys):
    f = tmp_path / "c.yaml"
    f.write_text(BASE)
    blocker = tmp_path / "file"
    blocker.write_text("")  # a run dir below a plain file: the OS refuses to create it
    code, _, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(blocker / "run"), "--no-progress")
    assert code == 7 and len(err.strip().splitlines()) == 1 and "Not a directory" in err, err


def test_sweep_rung_bounds_do_not_hang(tmp_path):
    """A reduction factor barely above 1 used to loop for ever computing rungs; now it is one line, at once."""
    from vaeray.sweep.spec import parse

    body = {**tiny_config(train={"steps": 10**9}), "sweep": {"scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 1.0000001}, "storage": str(tmp_path)}}
    body.pop("seed")
    with pytest.raises(ConfigError, match="more than 1000 rungs"):
        parse(body, "sw.yaml")
    body["sweep"]["scheduler"]["reduction_factor"] = 1.5
    spec = parse(body, "sw.yaml")
    assert spec.scheduler.milestones()[:4] == [1, 2, 3, 5]


def test_unreachable_address_fails_in_bounded_time(tmp_path, monkeypatch, capsys):
    import time

    f = tmp_path / "sw.yaml"
    body = yaml.safe_load(BASE)
    body["sweep"] = {"storage": str(tmp_path / "r")}
    f.write_text(yaml.safe_dump(body))
    monkeypatch.setenv("VAERAY_CONNECT_TIMEOUT", "2")
    t = time.monotonic()
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never routed, so the connection times out (or is refused at once)
    code, _, err = run_inprocess(monkeypatch, capsys, "sweep", str(f), "--dry-run", "--address", "192.0.2.1:6379")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot reach a Ray cluster" in err
    assert time.monotonic() - t < 30
    code, _, err = run_inprocess(monkeypatch, capsys, "sweep", str(f), "--dry-run", "--address", "127.0.0.1:1")
    assert code == 2 and "cannot reach" in err
    assert not (tmp_path / "r").exists()


def test_a_local_sweep_that_cannot_fit_says_so_before_ray_starts(tmp_path, monkeypatch, capsys):
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray session of another test is running in this process")
    f = tmp_path / "sw.yaml"
    body = yaml.safe_load(BASE)
    body["sweep"] = {"storage": str(tmp_path / "r"), "resources": {"cpu": 100000}}
    f.write_text(yaml.safe_dump(body))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, _, err = run_inprocess(monkeypatch, capsys, "sweep", str(f))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no trial could ever start" in err
    assert not ray.is_initialized() and not (tmp_path / "r").exists()


def test_clip_cuts_at_a_word_boundary():
    from vaeray.errors import clip

    text = "the quick brown fox jumps over the lazy dog " * 10
    out = clip(text, 50)
    assert len(out) <= 50 and out.endswith("...") and out[:-3] == text[: len(out) - 3].rstrip()
    assert text.startswith(out[:-3]) and text[len(out) - 3] == " "  # the cut falls between words
    assert clip("short\nline", 50) == "short line"
