"""The sweep wing: sweep files -> trials -> results, without Ray.

* :mod:`.spec`: load and validate a sweep file into a :class:`SweepSpec` (built from :mod:`.space`,
  :mod:`.settings`, :mod:`.configurations` and :mod:`.identity`);
* :mod:`.dryrun`: what a spec would run and whether it fits;
* :mod:`.plan`: what still needs to run (resume, extend, Optuna warm start);
* :mod:`.rungs`: seed-grouped early-stopping decisions;
* :mod:`.results`: the ledger, the tidy frame and seed aggregation;
* :mod:`.ray`: the Ray adapter, the only folder that imports ``ray``.

Import the module you need; this package's ``__init__`` imports none of them, so the wing has a single
direction of imports (spec <- dryrun, plan, results; everything <- ray).
"""
