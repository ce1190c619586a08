"""Does our time-limit deviation change issue 15's batch-1000 cells? (``reproduce.best_batch``)

Our default bootstraps V and the critic's Q' at the time limit (``bootstrap_truncation =
true``, a deviation); the authors treat it as terminal. At batch 1000 every Swimmer batch is
one path cut by the time limit, and the linear baseline ran away there. Profile
``truncation`` runs each family's batch-1000 cell with the authors' behaviour
(``trpo-b1000-term``, ``qprop-c-b1000-term``) on the grid's seeds 0-4 and rules; here each is
compared with the grid's own cell (profile ``bestbatch``) by ``reproduce.compare`` (ratio of
medians terminal/ours with its bootstrap CI), with the runaways of both.
"""

from __future__ import annotations

from pathlib import Path

from reproduce.algo_names import paper_name
from reproduce.baseline_runaway import runaways
from reproduce.compare import DomainResult, compare
from reproduce.compare_stats import fmt_median
from reproduce.spec import base_algo, runs_root

PROFILE = "truncation"
PAIRS = (("trpo-b1000-term", "trpo-b1000"), ("qprop-c-b1000-term", "qprop-c-b1000"))
VERDICTS = {"A faster": "terminal faster", "A slower": "terminal slower",
            "no difference shown": "no difference shown"}


def truncation_results(results: str | Path, grid: str = "bestbatch"
                       ) -> list[tuple[str, DomainResult]]:
    """(family, compare's DomainResult with A = the terminal cell, B = the grid's) for each
    domain with runs of the terminal cell; none without the profile's tree."""
    if not runs_root(results, PROFILE).is_dir():
        return []
    out = []
    for term, ours in PAIRS:
        found, _ = compare(results, term, ours, None, PROFILE, grid)
        out += [(base_algo(ours), r) for r in found if r.a.runs]
    return out


def truncation_rows(found: list[tuple[str, DomainResult]]) -> list[dict[str, str]]:
    """One report row per (domain, cell) of :func:`truncation_results`."""
    rows = []
    for _, r in found:
        away = {k: "; ".join(x.text() for x in runaways(side.runs)) or "none"
                for k, side in (("term", r.a), ("ours", r.b))}
        rows.append({
            "Domain": r.domain, "Cell": paper_name(r.b.algo),
            "terminal (authors'): crossed, median": f"{r.a.seeds_cell()}: "
                                                    f"{fmt_median(r.a.median)}",
            "bootstrapped (ours): crossed, median": f"{r.b.seeds_cell()}: "
                                                    f"{fmt_median(r.b.median)}",
            "Ratio terminal/ours [95% CI]": r.ratio_text,
            "Verdict": VERDICTS.get(r.verdict, r.verdict),
            "Baseline ran away, terminal": away["term"],
            "Baseline ran away, ours": away["ours"]})
    return rows
