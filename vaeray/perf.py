"""Speed settings: the process-level allocator setting for CPU training and the per-run options of ``train:``.

glibc's default malloc returns every buffer over 32 MiB (and trims the heap) after each use, so a training
step re-faults its activation memory from the kernel every time: on a 2-core machine that is a quarter to a
half of CPU time in page faults (``../shared/research/performance.md``; our own measurement is in
``docs/performance.md``). ``mallopt`` can switch that off at run time, which is what the
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` environment variables do at start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributions import Distribution

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def tune_allocator(trim_threshold: int = 1 << 32) -> bool:
    """Keep freed memory in the heap instead of returning it to the kernel. Linux/glibc only; True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok_mmap = mallopt(M_MMAP_MAX, 0) == 1
    ok_trim = mallopt(M_TRIM_THRESHOLD, min(trim_threshold, 2**31 - 1)) == 1
    return ok_mmap and ok_trim


# --- Per-run speed options (the ``train:`` keys channels_last, autocast, compile, optimizer_impl) -----------
# Each is measured in benchmarks/bench_train.py and docs/benchmarks.md says which help where; none changes
# what is computed beyond the documented precision of the reduced-precision modes.


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 dot products (AVX512-BF16 or AMX), so bf16 autocast can pay off."""
    caps = getattr(torch.cpu, "get_capabilities", lambda: {})()
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def autocast_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.autocast`` on ``device`` (None: full precision).

    ``auto`` is bf16 on a CPU with native bf16 and on a GPU that supports it, fp16 on older GPUs, else off.
    """
    if setting == "off":
        return None
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


PRECISIONS = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}


def pin_autocast(cfg: dict[str, Any], device: torch.device, checkpoint: Any = None) -> dict[str, Any]:
    """The run config with ``train.autocast: auto`` replaced by what it means for this run (off, bf16 or fp16).

    Resolved once, when the run starts, and pinned from then on: a checkpoint's config carries the concrete
    value, so a run resumed on a machine with other hardware (a CPU without bf16, a GPU) keeps the precision it
    started with instead of changing it mid-run; ``train.autocast`` is also fixed on resume
    (``vaeray.training_state.FIXED_ON_RESUME``), so an explicit change is refused. The run directory's ``config.yaml``
    and ``resolved.json`` record the concrete value.
    """
    if cfg["train"].get("autocast") != "auto":
        return cfg
    old = checkpoint.get("config", {}).get("train", {}).get("autocast") if isinstance(checkpoint, dict) else None
    if old == "auto":  # written before runs pinned their precision: resolved on each machine, as it was then
        return cfg
    value = old if old in ("off", "bf16", "fp16") else PRECISIONS[autocast_dtype("auto", device)]
    return {**cfg, "train": {**cfg["train"], "autocast": value}}


def _float_output(module: torch.nn.Module, args: Any, out: Any) -> Any:
    """Forward hook: a net's low-precision output back to float32, so the distributions and the loss math
    (logsumexp over the batch, log densities) run in full precision; only the nets run under autocast."""
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != torch.float32:
        return out.float()
    return out


class Amp:
    """What a training step needs for the run's precision: the autocast context and, for fp16, a GradScaler."""

    def __init__(self, device: torch.device, dtype: torch.dtype | None):
        self.device_type, self.dtype = device.type, dtype
        self.scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
        else:
            optimizer.step()

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()


def configure_model(model: torch.nn.Module, train: Any, device: torch.device) -> Amp:
    """Apply ``train.channels_last``, ``train.autocast`` and ``train.compile`` to a model on ``device``.

    The nets are the model's direct children (encoder, decoder, discriminator...): autocast and compilation
    apply to them, and their outputs are cast back to float32 for the loss. ``compile`` compiles each child
    in place (``nn.Module.compile``), so state-dict keys and checkpoints are unchanged.
    """
    if train.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-D conv weights; other parameters are unaffected
    dtype = autocast_dtype(train.autocast, device)
    if dtype is not None:
        for child in model.children():
            child.register_forward_hook(_float_output)
    if train.compile != "off":
        for child in model.children():
            child.compile(backend=train.compile)
    return Amp(device, dtype)


FUSED_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def optimizer_flags(impl: str, params: Any = (), extra: dict | None = None) -> dict[str, bool]:
    """Keyword arguments of ``train.optimizer_impl`` for torch's Adam/AdamW/SGD.

    ``auto``: torch's fused kernel where it has one for every parameter (floating point, on one device type with
    fused kernels: the CPU and CUDA among them) and the model's own optimizer settings do not choose a kernel;
    else torch's choice. The fused step does the same float32 arithmetic in one kernel per parameter instead of
    a chain of elementwise ops (the losses agree with the for-loop step to float rounding,
    tests/core/test_perf_options.py); it cut CPU time per image by up to 1.6x for MLP models
    (benchmarks/bench_families.py, docs/benchmarks.md). The trial identity is unchanged (still ``auto``).
    """
    if impl != "auto":
        return {"for_loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
    params = list(params)
    if not params or set(extra or {}) & {"foreach", "fused", "differentiable", "capturable"}:
        return {}
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    kinds = {p.device.type for p in params}
    ok = (len(kinds) == 1 and kinds <= set(_get_fused_kernels_supported_devices())
          and all(p.dtype in FUSED_DTYPES and not p.is_sparse for p in params))  # fmt: skip
    return {"fused": True} if ok else {}


@contextlib.contextmanager
def distribution_checks_off() -> Iterator[None]:
    """``torch.distributions`` argument validation off for a training step, restored afterwards.

    Each check is a ``.all()`` reduction read back by the host: eight device->host synchronisations per
    β-TCVAE step on a GPU. The loop checks every logged term for NaN/inf at each log step instead.
    """
    old = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(old)
