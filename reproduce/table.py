"""Table 1 from a results tree, beside the published numbers.

    python -m reproduce.table --results results [--profile table1] [--include-unfinished]

Reads the profile's runs (``<results>/<profile>/runs``, plus the extra rows its
``extra_rows_from`` names), writes ``<results>/<profile>/table.md``, ``table_compact.md`` and
``table.csv`` and prints the table. Per domain
and algorithm: episodes to the threshold in the paper's unit (1000 env steps), median over
every seed, a seed that never crossed censored where it ended (+inf: "> x" when half or more
never crossed), with a bootstrap 95% CI (>= 3 seeds) or min-max; how many seeds crossed;
the same crossing in env steps and real episodes; the max average return (median over
seeds); the paper's numbers; and a verdict per cell with its reason.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.algo_names import paper_name
from reproduce.compare_stats import median_ci
from reproduce.results import Collection, load_table_runs
from reproduce.run_stats import RunStats, run_stats
from reproduce.spec import (
    PAPER_BUDGET_EPISODES,
    TABLE1_ALGOS,
    SpecError,
    check_profile,
    domains,
    extra_rows_from,
    profile_dir,
    published_cell,
    threshold,
)
from reproduce.table_format import (  # noqa: F401 (git_head, fmt_num: for other modules)
    BOOTSTRAP_RESAMPLES,
    COMPACT_COLUMNS,
    display_frame,
    fmt_num,
    git_head,
    header,
    markdown_table,
    notes,
    text_table,
)
from reproduce.table_seeds import write_seeds

DEFAULT_PROFILE = "table1"


# ---------------------------------------------------------------------- spread

@dataclass
class Spread:
    median: float  # inf when half or more of the seeds are censored (never crossed)
    lo: float
    hi: float  # inf when censoring reaches the upper end
    kind: str  # "bootstrap 95% CI", "min-max", "single seed", ""
    bound: float = math.nan  # the median with censored seeds at their censoring points

    @property
    def ok(self) -> bool:
        return not math.isnan(self.median)


def spread(values: list[float]) -> Spread:
    """Median with a bootstrap 95% CI (>= 3 values), else min-max (2) or the value (1)."""
    vals = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if vals.size == 0:
        return Spread(math.nan, math.nan, math.nan, "")
    med = float(np.median(vals))
    if vals.size == 1:
        return Spread(med, med, med, "single seed")
    if vals.size == 2:
        return Spread(med, float(vals.min()), float(vals.max()), "min-max")
    if np.all(vals == vals[0]):
        return Spread(med, med, med, "bootstrap 95% CI")
    from scipy.stats import bootstrap

    res = bootstrap((vals,), np.median, confidence_level=0.95, n_resamples=BOOTSTRAP_RESAMPLES,
                    method="percentile", rng=np.random.default_rng(0))
    ci = res.confidence_interval
    return Spread(med, float(ci.low), float(ci.high), "bootstrap 95% CI")


def crossing_spread(stats: list[RunStats], field: str = "episodes") -> Spread:
    """Median over every seed of the crossing (``field``: episodes, env_steps or
    real_episodes), a seed that never crossed right-censored where it ended: +inf in the
    median, so the median is "> bound" when half or more never crossed (``bound``: the median
    with them at their censoring points). Spread as ``reproduce.compare``'s
    (``compare_stats.median_ci``); with no seed censored it is ``spread`` of the crossings."""
    values = [getattr(s, ("cross_" if s.crossed else "censor_") + field) for s in stats]
    censored = [not s.crossed for s in stats]
    if not any(censored):
        sp = spread(values)
        return Spread(sp.median, sp.lo, sp.hi, sp.kind, sp.median)
    m = median_ci(values, censored)
    return Spread(m.median, m.lo, m.hi, m.kind, m.bound)


# ---------------------------------------------------------------------- verdicts

def capped_budget(paper: tuple[float, str] | None, stats: list[RunStats]) -> float | None:
    """The budget of a cell the paper never crossed (N/A, >x) when ours was capped below the
    paper's 30000 episodes (profiles.toml budget_uncrossed), else None."""
    if not stats or paper is None or paper[1] not in ("N/A", ">"):
        return None
    budget = max(s.budget_episodes for s in stats)
    return budget if budget < PAPER_BUDGET_EPISODES else None


def _ep(x: float, bound: float = math.nan) -> str:
    """Episodes in a verdict's reason: "> bound" for a censored median, "inf" as ∞."""
    if math.isinf(x):
        return f"> {bound:,.0f}" if math.isfinite(bound) else "∞"
    return f"{x:,.0f}"


def verdict_episodes(paper: tuple[float, str] | None, stats: list[RunStats],
                     sp: Spread) -> tuple[str, str]:
    n = len(stats)
    k = sum(s.crossed for s in stats)
    if n == 0:
        return "missing", "no finished runs"
    if paper is None:
        return "", "no published number"
    value, qual = paper
    min_end = min(s.censor_episodes for s in stats)  # (used when no seed crossed)
    if qual in ("N/A", ">"):
        printed = "N/A" if qual == "N/A" else f">{value:,.0f}"
        if k == n:
            latest = max(s.cross_episodes for s in stats)
            return "better", (f"all {n} seeds crossed (latest at {latest:,.0f}); "
                              f"the paper's run never did within 30000 ({printed})")
        cap = capped_budget(paper, stats)
        if k == 0:
            if min_end >= PAPER_BUDGET_EPISODES * 0.99:
                return "within", f"neither crossed within 30000 episodes (paper {printed})"
            if cap is not None:
                return "not comparable", (f"capped at {cap:,.0f} episodes: no seed crossed by "
                                          f"then; the paper's run never crossed within 30000 "
                                          f"({printed}), so this shows nothing beyond "
                                          f"{cap:,.0f}")
            return "not comparable", (f"no seed crossed, but runs ended at {min_end:,.0f} < 30000 "
                                      f"episodes (paper {printed})")
        return "not comparable", (f"only {k}/{n} seeds crossed (censored median "
                                  f"{_ep(sp.median, sp.bound)}; paper {printed})"
                                  + (f"; capped at {cap:,.0f} episodes" if cap else ""))
    if k == 0:
        if min_end >= value:
            return "worse", (f"no seed crossed by {min_end:,.0f} episodes; the paper crossed "
                             f"at {value:,.0f}")
        return "not comparable", (f"no seed crossed, but our runs ended at {min_end:,.0f} "
                                  f"episodes, before the paper's crossing point {value:,.0f}")
    note = (f"paper {value:,.0f}, ours {_ep(sp.median, sp.bound)} [{_ep(sp.lo)}-{_ep(sp.hi)}, "
            f"{sp.kind}"
            + (f"; {n - k} of {n} seeds never crossed, each censored where its run ended" if k < n
               else "") + "]")
    if k < n:  # the censored seeds count as +inf: only a bound on our side can decide
        if value < sp.lo:
            return "worse", note + ": more episodes, censored seeds included"
        if value > sp.hi:
            return "better", note + ": fewer episodes, censored seeds included"
        return "not comparable", f"only {k}/{n} seeds crossed; " + note
    if value > sp.hi:
        return "better", note + ": fewer episodes"
    if value < sp.lo:
        return "worse", note + ": more episodes"
    return "within", note


def verdict_max(paper: tuple[float, str] | None, stats: list[RunStats], sp: Spread
                ) -> tuple[str, str]:
    n = len(stats)
    if n == 0:
        return "missing", "no finished runs"
    if paper is None:
        return "", "no published number"
    value, qual = paper
    full = all(s.full_budget for s in stats)
    ends = max(s.end_episodes for s in stats)
    n_early = sum(s.stopped_early for s in stats)
    short = ("" if full else f"; our runs ended by {ends:,.0f} episodes ({n_early} stopped "
             "early), the paper's max is over 30000")
    note = (f"paper {'>' if qual == '>' else ''}{fmt_num(value)}, ours {fmt_num(sp.median)} "
            f"[{fmt_num(sp.lo)}, {fmt_num(sp.hi)}, {sp.kind}]")
    if qual == ">":
        if sp.hi < value and full:
            return "worse", note + " (the paper's number is a lower bound)"
        return "not comparable", note + ": the paper gives only a lower bound" + short
    if sp.lo > value:
        return "better", note + (" (already, at a shorter budget)" if not full else "")
    if sp.hi < value:
        if full:
            return "worse", note
        return "not comparable", note + short
    return "within", note + ("" if full else " so far" + short)


# ---------------------------------------------------------------------- the table

def runs_table1_columns(profile: str) -> bool:
    """Whether the profile runs all of Table 1's columns (TR-c-Q-Prop, TRPO, DDPG), as
    ``table1``, ``quick`` and ``smoke`` do. Only then does its table list Table 1's whole
    grid, the cells it has not run as "missing", and count the verdicts; a pilot or a study
    of a few of them beside other algorithms (``stable``: TR-c-Q-Prop on Swimmer with and
    without the clipped target) lists only its own cells."""
    return set(TABLE1_ALGOS) <= set(check_profile(profile).get("algos", []))


def expected_cells(coll: Collection, profile: str) -> list[tuple[str, str]]:
    """Table 1's whole grid (when the profile runs its columns: ``runs_table1_columns``),
    plus the profile's cells and any other cell found on disk."""
    prof = check_profile(profile)
    cells = ([(d, a) for d in domains() for a in TABLE1_ALGOS]
             if runs_table1_columns(profile) else [])
    extra = {(d, a) for d in prof["domains"] for a in prof.get("algos", [])}
    extra |= {(r.domain, r.algo) for r in coll.runs}
    extra |= {(p.path.parent.parent.parent.name, p.path.parent.parent.name) for p in coll.problems}
    extra |= {(u.parent.parent.name, u.parent.name) for u in coll.unfinished}
    order = {d: i for i, d in enumerate(domains())}
    others = sorted(extra - set(cells), key=lambda c: (order.get(c[0], 99), c[0], c[1]))
    return cells + others


def build_table(results: str | Path, profile: str = DEFAULT_PROFILE, seeds: int | None = None,
                include_unfinished: bool = False) -> tuple[pd.DataFrame, Collection]:
    """One row per (domain, algorithm) with our numbers, the paper's and the verdicts, from
    the profile's runs and its extra rows (``results.load_table_runs``)."""
    coll = load_table_runs(results, profile, include_unfinished)
    prof = check_profile(profile)
    n_expected = seeds if seeds is not None else int(prof["seeds"])
    problems = Counter((p.path.parent.parent.parent.name, p.path.parent.parent.name)
                       for p in coll.problems)
    unfinished = Counter((u.parent.parent.name, u.parent.name) for u in coll.unfinished)
    rows: list[dict[str, Any]] = []
    for domain, algo in expected_cells(coll, profile):
        thresh = threshold(domain) if domain in domains() else math.nan
        runs = coll.select(domain, algo)
        stats = [run_stats(r, thresh) for r in runs]
        crossed = [s for s in stats if s.crossed]
        ep, steps, real = (crossing_spread(stats, f)
                           for f in ("episodes", "env_steps", "real_episodes"))
        mx = spread([s.max_return for s in stats])
        p_ep = published_cell(domain, algo, "episodes")
        p_mx = published_cell(domain, algo, "max_return")
        v_ep, why_ep = verdict_episodes(p_ep, stats, ep)
        v_mx, why_mx = verdict_max(p_mx, stats, mx)
        in_grid = algo in TABLE1_ALGOS
        present = len(runs) + problems[(domain, algo)] + unfinished[(domain, algo)]
        in_profile = domain in prof["domains"] and algo in prof.get("algos", [])
        missing = max(0, n_expected - present) if in_profile else 0
        budgets = [s.budget_episodes for s in stats]
        rows.append({
            "domain": domain, "algo": algo, "algorithm": paper_name(algo),
            "table1_column": in_grid, "threshold": thresh,
            "metric": runs[0].metric if runs else (C.eval_return if algo.startswith("ddpg")
                                                   else C.average_return),
            "seeds_run": len(runs), "seeds_crossed": len(crossed),
            "seeds_crossed_diverged": ",".join(str(r.seed) for r, st in zip(runs, stats,
                                                                              strict=True)
                                               if st.crossed_diverged),
            "seeds_stopped_nonfinite": ",".join(str(r.seed) for r in runs if r.nonfinite),
            "seeds_corrupt": problems[(domain, algo)],
            "seeds_unfinished": unfinished[(domain, algo)] if not include_unfinished else sum(
                not r.finished for r in runs),
            "seeds_missing": missing, "seeds": ",".join(str(r.seed) for r in runs),
            # medians over every seed, censored ones as +inf; *_bound: censored at their ends
            "episodes_median": ep.median, "episodes_bound": ep.bound, "episodes_lo": ep.lo,
            "episodes_hi": ep.hi, "episodes_interval": ep.kind,
            "env_steps_median": steps.median, "env_steps_bound": steps.bound,
            "env_steps_lo": steps.lo, "env_steps_hi": steps.hi,
            "real_episodes_median": real.median, "real_episodes_bound": real.bound,
            "real_episodes_lo": real.lo, "real_episodes_hi": real.hi,
            "max_return_median": mx.median, "max_return_lo": mx.lo, "max_return_hi": mx.hi,
            "max_return_interval": mx.kind,
            "paper_episodes": p_ep[0] if p_ep else math.nan,
            "paper_episodes_qualifier": p_ep[1] if p_ep else "",
            "paper_max_return": p_mx[0] if p_mx else math.nan,
            "paper_max_return_qualifier": p_mx[1] if p_mx else "",
            "verdict_episodes": v_ep, "verdict_episodes_reason": why_ep,
            "verdict_max_return": v_mx, "verdict_max_return_reason": why_mx,
            "budget_episodes_min": min(budgets) if budgets else math.nan,
            "budget_episodes_max": max(budgets) if budgets else math.nan,
            # where the runs that stopped early had all ended (not the full-budget ones')
            "early_ended_episodes_max": max((s.end_episodes for s in stats if s.stopped_early),
                                            default=math.nan),
            "stopped_early": sum(s.stopped_early for s in stats),
            "budget_capped": capped_budget(p_ep, stats) is not None,
        })
    return pd.DataFrame(rows), coll


def write_table(results: str | Path, profile: str = DEFAULT_PROFILE, seeds: int | None = None,
                include_unfinished: bool = False, echo: bool = True) -> pd.DataFrame:
    """Write ``<results>/<profile>/table.md``, ``table_compact.md`` and ``table.csv``, and
    the runs seed by seed (``seeds.md``, ``seeds.csv``: ``reproduce.table_seeds``)."""
    df, coll = build_table(results, profile, seeds, include_unfinished)
    for p in coll.problems:
        print(f"reproduce.table: skipped {p.path}: {p.message}", file=sys.stderr)
    shown = display_frame(df)
    out = profile_dir(results, profile)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "table.csv", index=False)
    grid = runs_table1_columns(profile)
    head = header(coll, profile, grid)
    md = head + [markdown_table(shown)] + notes(df, coll, grid)
    (out / "table.md").write_text("\n".join(md) + "\n")
    # The README's short form: the cells that ran, the columns a reader compares first.
    ran = shown[df["seeds_run"].to_numpy() > 0]
    (out / "table_compact.md").write_text(markdown_table(ran[COMPACT_COLUMNS]) + "\n")
    write_seeds(coll, out, profile)  # seeds.md, seeds.csv: the same runs, one row each
    if echo:
        print("\n".join(head[2:]))
        print(text_table(shown))
        print("\n".join(notes(df, coll, grid)))
        print(f"\nwrote {out / 'table.md'} and {out / 'table.csv'}")
    return df


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="whose runs (<results>/<profile>/runs, plus its extra_rows_from) and "
                        "whose domains/algos/seeds count as expected (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=None, help="seeds expected per cell")
    p.add_argument("--include-unfinished", action="store_true",
                   help="also use runs without DONE (in progress or failed)")
    args = p.parse_args(argv)
    try:
        check_profile(args.profile)
        extra_rows_from(args.profile)
    except SpecError as exc:
        print(f"reproduce.table: error: {exc}", file=sys.stderr)
        return 2
    if not Path(args.results).is_dir():  # a mistyped path must not grow a table of "missing"
        print(f"reproduce.table: error: no results directory {args.results!r} (make "
              "reproduce-table or make campaign-collect fills one)", file=sys.stderr)
        return 2
    if args.seeds is not None and args.seeds < 1:
        print(f"reproduce.table: error: --seeds must be >= 1, not {args.seeds}", file=sys.stderr)
        return 2
    write_table(args.results, args.profile, args.seeds, args.include_unfinished)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
