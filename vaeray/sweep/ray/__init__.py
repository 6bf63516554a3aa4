"""THE Ray adapter: the only place in vaeray that imports ``ray``.

One module per role: :mod:`.trainable` (``fit`` as a Tune function trainable), :mod:`.scheduler` (seed-grouped
early stopping), :mod:`.callbacks` (ledger, progress, W&B, trial names, error lines) and :mod:`.runner`
(``run_sweep``: restore, extend, build the Tuner, Optuna, signals, cluster view). Ray's API has churned three
times in five years; keeping it in this folder keeps that cost here. Everything that needs no Ray lives in
:mod:`vaeray.sweep` and is tested without it.

Importing this package imports nothing from Ray; import the module you need (``vaeray.sweep.ray.runner``).
Inside it, ``import ray`` is the top-level Ray package (absolute imports), not this folder.
"""
