"""A failed trial's reason, as one line: the exception message, not the traceback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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


@given(
    st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=12), min_size=1, max_size=30),
    st.sampled_from([" ", ", ", ": ", "/"]),
    st.integers(10, 80),
)
def test_clip_keeps_whole_words_within_the_limit(words, sep, limit):
    from vaeray.errors import clip

    text = sep.join(words)
    out = clip(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
        return
    assert out.endswith("...")
    kept = out[:-3]
    assert text.startswith(kept)
    rest = text[len(kept):]
    # the cut falls on a separator (the next character starts a separator, or the kept part ends with one),
    # unless no separator lies in the kept half: then one long token is cut where it must be
    on_boundary = rest[:1] in (" ", ",", ":", "/") or kept[-1:] in (",", ":", "/")
    longest = max(len(w) for w in words)
    assert on_boundary or longest >= (limit - 3) // 2, (text, out)


def test_dry_run_space_lines_never_cut_mid_word():
    from vaeray.sweep.space import parse_space

    space = parse_space({"model": {"grid": [{"name": "beta_tcvae", "net": "burgess", "latent_dim": 10, "beta": 6.4},
                                             {"name": "factor_vae", "gamma": 6.4, "lr_disc": 0.0001}]}})
    from vaeray.sweep.space import leaves

    line = leaves(space)[0].describe()
    # cut after a separator; the old cut at 37 characters gave '{"name": "beta_tcvae", "net": "burges...'
    assert line == 'grid [\'{"name": "beta_tcvae", "net":...\', \'{"name": "factor_vae", "gamma": 6.4,...\']', line
