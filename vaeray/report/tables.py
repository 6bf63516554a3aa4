"""Comparison tables: which metrics a report shows, in which groups, and the three formats it writes them in
(Markdown for the terminal, CSV for further analysis, LaTeX with booktabs rules for a paper).

A table is a :class:`Table`: a title, column headers and cells as text (``mean ± CI (n)``), plus a numeric
frame with the same rows for the CSV (``<metric>_mean``, ``_ci``, ``_std``, ``_count`` as numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# The groups the issue asks for, in display order; a metric appears only where some trial reported it.
GROUPS: dict[str, tuple[str, ...]] = {
    "disentanglement": ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness_test",
                        "factor_vae_score_eval", "sap", "modularity", "explicitness_test", "aam"),
    "likelihood": ("nll", "elbo", "bits_per_dim"),
    "family": ("equivariance_error", "capcorr", "content_accuracy", "style_accuracy"),
    "training": ("loss", "rec", "kl"),
}  # fmt: skip
LABELS = {
    "mig": "MIG", "dci_disentanglement": "DCI dis.", "dci_completeness": "DCI compl.",
    "dci_informativeness_test": "DCI info.", "factor_vae_score_eval": "FactorVAE score", "sap": "SAP",
    "modularity": "modularity", "explicitness_test": "explicitness", "aam": "AAM", "nll": "NLL", "elbo": "ELBO",
    "bits_per_dim": "bits/dim", "equivariance_error": "equivariance error", "capcorr": "CapCorr",
    "content_accuracy": "content acc.", "style_accuracy": "style acc.", "loss": "loss", "rec": "rec.", "kl": "KL",
}  # fmt: skip
UNITS = {
    "nll": "nats", "elbo": "nats", "loss": "nats", "rec": "nats", "kl": "nats",
    "mig": "0–1", "dci_disentanglement": "0–1", "dci_completeness": "0–1", "dci_informativeness_test": "0–1",
    "factor_vae_score_eval": "accuracy", "sap": "0–1", "modularity": "0–1", "explicitness_test": "AUC",
    "content_accuracy": "accuracy", "style_accuracy": "accuracy", "step": "training steps", "time_total_s": "s",
}  # fmt: skip


def label(metric: str, units: bool = True) -> str:
    name = LABELS.get(metric, metric)
    return f"{name} ({UNITS[metric]})" if units and metric in UNITS else name


def present(df: pd.DataFrame, group: str) -> list[str]:
    """The metrics of ``group`` some row of ``df`` has a value for."""
    return [m for m in GROUPS[group] if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]


def pm(mean: float, half: float, n: int) -> str:
    """``mean ± half (n)``: half-width of the 95% t interval; one seed shows its value and ``(n=1)``."""
    if not n or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if n == 1 or half is None or math.isnan(half):
        return f"{mean:.4g} (n=1)"
    return f"{rounded(mean, half)} ({n})"


def rounded(mean: float, half: float) -> str:
    """``mean ± half`` with the interval to two significant digits and the mean to the same decimal place."""
    if half <= 0 or not math.isfinite(half):
        return f"{mean:.4g} ± 0"
    d = 1 - math.floor(math.log10(half))
    if d >= 0:
        return f"{mean:.{d}f} ± {half:.{d}f}"
    q = 10.0 ** (-d)
    return f"{round(mean / q) * q:.0f} ± {round(half / q) * q:.0f}"


def short(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Table:
    name: str  # file stem: <name>.csv, <name>.tex
    title: str
    headers: list[str]
    rows: list[list[str]]
    numbers: pd.DataFrame = field(default_factory=pd.DataFrame)
    note: str = ""

    def markdown(self) -> str:
        def cell(v: str) -> str:
            return v.replace("|", "\\|")

        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(cell(h) for h in self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def latex(self) -> str:
        """A booktabs tabular (hand-written: pandas' ``to_latex`` needs jinja2, which vaeray does not require)."""
        cols = "l" * len(self.headers)
        out = [f"% {self.title}", f"\\begin{{tabular}}{{{cols}}}", "\\toprule"]
        out.append(" & ".join(latex_escape(h) for h in self.headers) + r" \\")
        out.append("\\midrule")
        out += [" & ".join(latex_escape(v) for v in r) + r" \\" for r in self.rows]
        out += ["\\bottomrule", "\\end{tabular}", ""]
        return "\n".join(out)

    def write(self, directory: str) -> list[str]:
        import os

        os.makedirs(directory, exist_ok=True)
        csv, tex = os.path.join(directory, f"{self.name}.csv"), os.path.join(directory, f"{self.name}.tex")
        frame = self.numbers if not self.numbers.empty else pd.DataFrame(self.rows, columns=self.headers)
        frame.to_csv(csv, index=False)
        with open(tex, "w") as f:
            f.write(self.latex())
        return [csv, tex]


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    text = re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX[m.group()], str(text))
    return text.replace("±", r"$\pm$").replace("–", "--")


def configuration_table(name: str, title: str, ranked: pd.DataFrame, varying: Sequence[str], metrics: Sequence[str],
                        lead: Sequence[str] = ("family", "model"), note: str = "") -> Table:  # fmt: skip
    """One row per configuration (already ranked): identity, varying hyperparameters, seed counts, and per
    metric ``mean ± CI (n)``; the numeric frame carries the same numbers unformatted."""
    lead = [c for c in lead if c in ranked and c not in varying]
    shown = [c for c in varying if c not in lead]
    has_rank = "rank" in ranked
    headers = (["rank", "tied with"] if has_rank else []) + [*lead, "config", *(c for c in shown), "seeds"]
    headers += [label(m) for m in metrics]
    rows, numbers = [], []
    for _, r in ranked.iterrows():
        seeds = f"{r['n_completed']}"
        for status in ("stopped", "error", "running", "pending"):
            if r.get(f"n_{status}", 0):
                seeds += f" +{r[f'n_{status}']} {status}"
        cells = [str(r["rank"]), str(r["tied"]) or "-"] if has_rank else []
        cells += [short(r[c]) for c in lead] + [str(r["config_hash"])] + [short(r[c]) for c in shown] + [seeds]
        cells += [pm(r.get(f"{m}_mean", math.nan), r.get(f"{m}_ci", math.nan), int(r.get(f"{m}_count", 0) or 0)) for m in metrics]
        rows.append(cells)
        num: dict[str, Any] = {k: r[k] for k in ("rank", "tied") if has_rank}
        num.update({c: r[c] for c in (*lead, "config_hash", *shown) if c in r})
        num.update({f"n_{s}": r.get(f"n_{s}", 0) for s in ("completed", "stopped", "error", "running", "pending")})
        for m in metrics:
            num.update({f"{m}_{k}": r.get(f"{m}_{k}", math.nan) for k in ("mean", "ci", "std", "count")})
        numbers.append(num)
    return Table(name, title, headers, rows, pd.DataFrame(numbers), note)
