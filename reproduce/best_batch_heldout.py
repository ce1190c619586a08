"""The held-out verdict of issue 15 (``reproduce.best_batch``): on the confirmation's seeds
only, Q-Prop's and TRPO's chosen batches compared by ``reproduce.compare``'s ratio of medians
with its bootstrap CI, and a one-sided Mann-Whitney U p (censored = +inf)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import combine_pvalues, mannwhitneyu

from reproduce.baseline_runaway import runaways
from reproduce.compare import Counted, DomainResult, Side, counted_runs, episodes_to_threshold
from reproduce.compare_stats import fmt_episodes
from reproduce.spec import SpecError, base_algo, selected_algos, threshold
from reproduce.stability_runs import divergences_text

CONFIRM = "bestbatch-confirm"
FAMILIES = ("trpo", "qprop-c")  # the held-out ratio is qprop-c / trpo
VERDICTS = {"A faster": "Q-Prop faster", "A slower": "TRPO faster",
            "no difference shown": "indistinguishable"}


def mann_whitney_p(q: Side, t: Side) -> float:
    """One-sided Mann-Whitney U p of "Q-Prop needs fewer episodes than TRPO", censored = +inf."""
    if not q.runs or not t.runs:
        return math.nan
    x = np.where(q.censored, np.inf, q.values)
    y = np.where(t.censored, np.inf, t.values)
    return float(mannwhitneyu(x, y, alternative="less").pvalue)


def heldout_verdict(q: Side, t: Side, domain: str) -> tuple[DomainResult, str, float]:
    """compare's DomainResult (A = Q-Prop, B = TRPO), the verdict in this report's words,
    and the one-sided Mann-Whitney p."""
    r = DomainResult(domain, threshold(domain), q, t)
    return r, VERDICTS.get(r.verdict, r.verdict), mann_whitney_p(q, t)


@dataclass
class Heldout:
    domain: str
    result: DomainResult  # A = Q-Prop, B = TRPO
    verdict: str
    p: float


def heldout(results: Path) -> tuple[list[Heldout], Counted | None, str]:
    """The held-out comparisons, the confirmation's counted runs, and why there are none."""
    try:
        chosen = selected_algos(CONFIRM, results)
    except SpecError as exc:
        return [], None, str(exc)
    assert chosen is not None  # the profile has algos_from
    counted = counted_runs(results, CONFIRM, {a for v in chosen.values() for a in v})
    out = []
    for d, names in chosen.items():
        fam = {base_algo(a): a for a in names}
        if not set(FAMILIES) <= set(fam):
            return [], counted, f"selection for {d} lacks one of {FAMILIES}: {names}"
        q, t = (Side(fam[f], [r for r in counted.runs if r.domain == d and r.algo == fam[f]],
                     counted.excluded.get((d, fam[f]), 0)) for f in ("qprop-c", "trpo"))
        r, word, p = heldout_verdict(q, t, d)
        out.append(Heldout(d, r, word, p))
    return out, counted, ""


def pooled_p(items: list[Heldout]) -> float:
    """One p for "Q-Prop needs fewer episodes" on every domain at once: Stouffer's
    combination, equal weights, of the per-domain one-sided Mann-Whitney p's,
    z = sum_d Phi^-1(1 - p_d) / sqrt(D) (``scipy.stats.combine_pvalues``). NaN with fewer
    than two domains."""
    ps = [h.p for h in items if math.isfinite(h.p)]
    if len(ps) < 2:
        return math.nan
    return float(combine_pvalues(ps, method="stouffer").pvalue)


def seeds_text(side: Side) -> str:
    """Each held-out seed's episodes to threshold, in seed order: "s5 452, s6 > 1,430
    (stopped: non-finite), s7 > 3,100" (censored: "> x" at its censoring point)."""
    out = []
    for run in sorted(side.runs, key=lambda r: r.seed):
        c = episodes_to_threshold(run)
        ep = float(c.episodes)
        text = fmt_episodes(math.inf, ep) if c.censored else fmt_episodes(ep)
        out.append(f"s{run.seed} {text}" + (" (stopped: non-finite)" if run.nonfinite else ""))
    return ", ".join(out)


def flags_text(side: Side) -> str:
    """The seeds whose baseline ran away or whose critic diverged, named as in the grid."""
    parts = [f"baseline ran away: {'; '.join(x.text() for x in found)}"
             for found in [runaways(side.runs)] if found]
    if div := divergences_text(side.runs):
        parts.append(f"critic diverged: {div}")
    return "; ".join(parts)


def heldout_rows(items: list[Heldout]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for h in items:
        for fam, side in (("qprop-c", h.result.a), ("trpo", h.result.b)):
            rows.append({"section": "held-out", "domain": h.domain, "family": fam,
                         "algo": side.algo, "counted": len(side.runs),
                         "crossed": int((~side.censored).sum()),
                         "median": side.median.median, "median_bound": side.median.bound,
                         "seeds": seeds_text(side), "flagged": flags_text(side),
                         "ratio": h.result.ratio, "ci_lo": h.result.lo, "ci_hi": h.result.hi,
                         "p_mann_whitney": h.p, "verdict": h.verdict})
    return rows
