"""Table 1 from a results tree, beside the published numbers.

    python -m reproduce.table --results results [--profile quick] [--include-unfinished]

Writes ``<results>/table.md`` and ``<results>/table.csv`` and prints the table. Per domain
and algorithm: episodes to the threshold in the paper's unit (1000 env steps), median over
the seeds that crossed with a bootstrap 95% CI (>= 3 seeds) or min-max; how many seeds
crossed; the same crossing in env steps and real episodes; the max average return (median
over seeds); the paper's numbers; and a verdict per cell with its reason.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.results import Collection, Run, load_runs
from reproduce.spec import (
    EPISODE_STEPS,
    PAPER_BUDGET_EPISODES,
    REPO_ROOT,
    TABLE1_ALGOS,
    algos,
    domains,
    paper_name,
    profiles,
    published_cell,
    threshold,
)

BOOTSTRAP_RESAMPLES = 9999


# ---------------------------------------------------------------------- per-run numbers

@dataclass
class RunStats:
    crossed: bool
    cross_episodes: float  # paper episodes at the first crossing (nan if none)
    cross_env_steps: float
    cross_real_episodes: float
    max_return: float  # within the first 30000 paper episodes
    end_episodes: float  # last logged paper episode
    full_budget: bool  # ran the paper's 30000 episodes (no early stop, budget >= 30000)
    budget_episodes: float
    stopped_early: bool


def run_stats(run: Run, thresh: float) -> RunStats:
    df = run.progress
    window = df[df[C.paper_episodes] <= PAPER_BUDGET_EPISODES]
    if window.empty:  # the first row already lies beyond 30000 episodes
        window = df.iloc[:1]
    above = window[window[run.metric] > thresh]
    budget = run.budget_steps
    budget_ep = budget / EPISODE_STEPS if budget is not None else float(df[C.paper_episodes].max())
    full = (not run.stopped_early and budget_ep >= PAPER_BUDGET_EPISODES
            and float(df[C.paper_episodes].max()) >= PAPER_BUDGET_EPISODES * 0.99)
    if above.empty:
        cross = (math.nan, math.nan, math.nan)
    else:
        row = above.iloc[0]
        cross = (float(row[C.paper_episodes]), float(row[C.env_steps]),
                 float(row[C.real_episodes]))
    return RunStats(not above.empty, *cross, float(window[run.metric].max()),
                    float(df[C.paper_episodes].max()), full, budget_ep, run.stopped_early)


# ---------------------------------------------------------------------- spread

@dataclass
class Spread:
    median: float
    lo: float
    hi: float
    kind: str  # "bootstrap 95% CI", "min-max", "single seed", ""

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


# ---------------------------------------------------------------------- verdicts

def fmt_num(x: float, small: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if small or abs(x) < 100:
        return f"{x:,.1f}"
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
    min_end = min(min(s.end_episodes, PAPER_BUDGET_EPISODES) for s in stats)
    if qual in ("N/A", ">"):
        printed = "N/A" if qual == "N/A" else f">{value:,.0f}"
        if k == n:
            latest = max(s.cross_episodes for s in stats)
            return "better", (f"all {n} seeds crossed (latest at {latest:,.0f}); "
                              f"the paper's run never did within 30000 ({printed})")
        if k == 0:
            if min_end >= PAPER_BUDGET_EPISODES * 0.99:
                return "within", f"neither crossed within 30000 episodes (paper {printed})"
            return "not comparable", (f"no seed crossed, but runs ended at {min_end:,.0f} < 30000 "
                                      f"episodes (paper {printed})")
        return "not comparable", f"only {k}/{n} seeds crossed (paper {printed})"
    if k == 0:
        if min_end >= value:
            return "worse", (f"no seed crossed by {min_end:,.0f} episodes; the paper crossed "
                             f"at {value:,.0f}")
        return "not comparable", (f"no seed crossed, but our runs ended at {min_end:,.0f} "
                                  f"episodes, before the paper's crossing point {value:,.0f}")
    if k < n:
        return "not comparable", (f"only {k}/{n} seeds crossed (those at median "
                                  f"{sp.median:,.0f}; paper {value:,.0f})")
    note = f"paper {value:,.0f}, ours {sp.median:,.0f} [{sp.lo:,.0f}-{sp.hi:,.0f}, {sp.kind}]"
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

def expected_cells(coll: Collection, profile: str | None) -> list[tuple[str, str]]:
    """Table 1's grid, plus the profile's cells and any other cell found on disk."""
    cells = [(d, a) for d in domains() for a in TABLE1_ALGOS]
    extra = set()
    if profile:
        extra |= {(d, a) for d in profiles()[profile]["domains"]
                  for a in profiles()[profile]["algos"]}
    extra |= {(r.domain, r.algo) for r in coll.runs}
    extra |= {(p.path.parent.parent.parent.name, p.path.parent.parent.name) for p in coll.problems}
    extra |= {(u.parent.parent.name, u.parent.name) for u in coll.unfinished}
    order = {d: i for i, d in enumerate(domains())}
    others = sorted(extra - set(cells), key=lambda c: (order.get(c[0], 99), c[0], c[1]))
    return cells + others


def build_table(results: str | Path, profile: str | None = None, seeds: int | None = None,
                include_unfinished: bool = False) -> tuple[pd.DataFrame, Collection]:
    """One row per (domain, algorithm) with our numbers, the paper's and the verdicts."""
    coll = load_runs(results, include_unfinished)
    n_expected = seeds if seeds is not None else (profiles()[profile]["seeds"] if profile else None)
    problems = Counter((p.path.parent.parent.parent.name, p.path.parent.parent.name)
                       for p in coll.problems)
    unfinished = Counter((u.parent.parent.name, u.parent.name) for u in coll.unfinished)
    rows: list[dict[str, Any]] = []
    for domain, algo in expected_cells(coll, profile):
        thresh = threshold(domain) if domain in domains() else math.nan
        runs = coll.select(domain, algo)
        stats = [run_stats(r, thresh) for r in runs]
        crossed = [s for s in stats if s.crossed]
        ep = spread([s.cross_episodes for s in crossed])
        steps = spread([s.cross_env_steps for s in crossed])
        real = spread([s.cross_real_episodes for s in crossed])
        mx = spread([s.max_return for s in stats])
        p_ep = published_cell(domain, algo, "episodes")
        p_mx = published_cell(domain, algo, "max_return")
        v_ep, why_ep = verdict_episodes(p_ep, stats, ep)
        v_mx, why_mx = verdict_max(p_mx, stats, mx)
        in_grid = algo in TABLE1_ALGOS
        present = len(runs) + problems[(domain, algo)] + unfinished[(domain, algo)]
        in_profile = profile is None or (
            domain in profiles()[profile]["domains"] and algo in profiles()[profile]["algos"])
        missing = (max(0, n_expected - present) if n_expected is not None and in_profile
                   else 0)
        budgets = [s.budget_episodes for s in stats]
        rows.append({
            "domain": domain, "algo": algo, "algorithm": paper_name(algo),
            "table1_column": in_grid, "threshold": thresh,
            "metric": runs[0].metric if runs else (C.eval_return if algo.startswith("ddpg")
                                                   else C.average_return),
            "seeds_run": len(runs), "seeds_crossed": len(crossed),
            "seeds_corrupt": problems[(domain, algo)],
            "seeds_unfinished": unfinished[(domain, algo)] if not include_unfinished else sum(
                not r.finished for r in runs),
            "seeds_missing": missing, "seeds": ",".join(str(r.seed) for r in runs),
            "episodes_median": ep.median, "episodes_lo": ep.lo, "episodes_hi": ep.hi,
            "episodes_interval": ep.kind,
            "env_steps_median": steps.median, "env_steps_lo": steps.lo, "env_steps_hi": steps.hi,
            "real_episodes_median": real.median, "real_episodes_lo": real.lo,
            "real_episodes_hi": real.hi,
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
            "ended_episodes_max": max((s.end_episodes for s in stats), default=math.nan),
            "stopped_early": sum(s.stopped_early for s in stats),
        })
    return pd.DataFrame(rows), coll


# ---------------------------------------------------------------------- rendering

def _paper(value: float, qual: str, small: bool = False) -> str:
    """A published number as the paper printed it (N/A, >x, integers without decimals)."""
    if qual == "N/A":
        return "N/A"
    text = f"{value:,.0f}" if float(value).is_integer() and not small else fmt_num(value, small)
    return (">" if qual == ">" else "") + text


def _with_spread(med: float, lo: float, hi: float, kind: str, small: bool = False) -> str:
    if math.isnan(med):
        return "-"
    if kind in ("single seed", "") or (lo == med == hi and kind != "min-max"):
        return fmt_num(med, small)
    sep = "–"
    bracket = f"[{fmt_num(lo, small)}{sep}{fmt_num(hi, small)}]"
    return f"{fmt_num(med, small)} {bracket}" + ("" if kind.startswith("bootstrap") else " (range)")


def _seeds_cell(r: pd.Series) -> str:
    if r.seeds_run == 0 and not (r.seeds_corrupt or r.seeds_unfinished):
        return "missing" + (f" (0/{int(r.seeds_missing)})" if r.seeds_missing else "")
    text = f"{r.seeds_crossed}/{r.seeds_run}"
    extra = []
    if r.seeds_corrupt:
        extra.append(f"{r.seeds_corrupt} corrupt")
    if r.seeds_unfinished:
        extra.append(f"{r.seeds_unfinished} unfinished")
    if r.seeds_missing:
        extra.append(f"{int(r.seeds_missing)} missing")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _budget_cell(r: pd.Series) -> str:
    if r.seeds_run == 0:
        return "-"
    lo, hi = r.budget_episodes_min, r.budget_episodes_max
    text = fmt_num(lo) if lo == hi else f"{fmt_num(lo)}–{fmt_num(hi)}"
    if r.stopped_early:
        text += f", {r.stopped_early} stopped early by {fmt_num(r.ended_episodes_max)}"
    return text


COMPACT_COLUMNS = ["Domain", "Threshold", "Algorithm", "Seeds crossed", "Episodes (ours)",
                   "Episodes (paper)", "Episodes verdict", "MaxReturn (ours)",
                   "MaxReturn (paper)", "Budget (episodes)"]


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        small = abs(r.threshold) < 20 if not math.isnan(r.threshold) else False  # Reacher
        missing = r.seeds_run == 0
        rows.append({
            "Domain": r.domain,
            "Threshold": f"{r.threshold:g}" if not math.isnan(r.threshold) else "-",
            "Algorithm": r.algorithm,
            "Seeds crossed": _seeds_cell(r),
            "Episodes (ours)": "missing" if missing else _with_spread(
                r.episodes_median, r.episodes_lo, r.episodes_hi, r.episodes_interval),
            "Episodes (paper)": (_paper(r.paper_episodes, r.paper_episodes_qualifier)
                                 if r.table1_column else "-"),
            "Episodes verdict": r.verdict_episodes or "-",
            "Env steps (ours)": "missing" if missing else fmt_num(r.env_steps_median),
            "Real episodes (ours)": "missing" if missing else fmt_num(r.real_episodes_median),
            "MaxReturn (ours)": "missing" if missing else _with_spread(
                r.max_return_median, r.max_return_lo, r.max_return_hi, r.max_return_interval,
                small),
            "MaxReturn (paper)": (_paper(r.paper_max_return, r.paper_max_return_qualifier, small)
                                  if r.table1_column else "-"),
            "MaxReturn verdict": r.verdict_max_return or "-",
            "Budget (episodes)": _budget_cell(r),
        })
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def text_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    widths = [max(len(c), *(len(str(v)) for v in df[c])) for c in cols]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for _, row in df.iterrows():
        out.append("  ".join(str(row[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))
    return "\n".join(out)


def git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (head or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _distinct(values: list[Any]) -> str:
    vals = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(vals) if vals else "unknown"


def header(coll: Collection) -> list[str]:
    cfgs = [r.config or {} for r in coll.runs]
    versions = [c.get("versions", {}) for c in cfgs]
    ddpg = [c.get("config", {}) for c in cfgs if c.get("config", {}).get("algo") == "ddpg"]
    specs = [r.spec or {} for r in coll.runs]
    early = _distinct([(r.done or {}).get("early_stop") or "none (full budget)"
                       for r in coll.runs])
    seeds = sorted({r.seed for r in coll.runs})
    commits = _distinct([c.get("git_commit") for c in cfgs])
    hp = algos()["ddpg"]
    eval_steps = _distinct([c.get("eval_steps") for c in ddpg]) if ddpg else hp["eval_steps"]
    epoch = _distinct([c.get("batch_size") for c in ddpg]) if ddpg else hp["batch_size"]
    return [
        "# Table 1 of Q-Prop (Gu et al., ICLR 2017), reproduced",
        "",
        f"- **Environments**: Gymnasium **v5** MuJoCo tasks (gymnasium "
        f"{_distinct([v.get('gymnasium') for v in versions])}, mujoco "
        f"{_distinct([v.get('mujoco') for v in versions])}, tensorflow "
        f"{_distinct([v.get('tensorflow') for v in versions])}). The paper ran Gym v1 on an "
        "old MuJoCo (different observations, rewards and contacts), so a threshold does not "
        "mean exactly the same thing; the paper's numbers are beside ours, not replaced.",
        "- **Episodes** are the paper's unit: **1 episode = 1000 env steps** (its x-axis is "
        "iteration x batch size / 1000), not real episodes. The crossing is also given in env "
        "steps and in real (completed) episodes.",
        "- **Crossing**: the first iteration whose return is > the threshold (no smoothing), "
        "within the first 30000 episodes; median over the seeds that crossed. **MaxReturn**: "
        "the best return within the first 30000 episodes, median over seeds.",
        "- **Spread**: [bootstrap 95% CI of the median] (scipy.stats.bootstrap, percentile, "
        f"{BOOTSTRAP_RESAMPLES} resamples) with >= 3 seeds; [min–max] (range) with 2.",
        "- **Returns**: TR-c-Q-Prop and TRPO report the mean return of their own stochastic "
        "training batch; **DDPG reports the noise-free evaluation return** (deterministic "
        f"actor, {eval_steps} env steps of evaluation after every epoch of {epoch} env steps), "
        "as the authors did.",
        f"- **Runs**: profile(s) {_distinct([s.get('profile') for s in specs])}; seeds "
        f"{', '.join(map(str, seeds)) if seeds else 'none'}; budgets per row (last column; the "
        f"paper's is 30000 episodes = 30M env steps). Early stop rule: {early}.",
        "- **Verdicts**: Episodes *better* = fewer episodes than the paper beyond our spread; "
        "MaxReturn *better* = higher. *within* = the paper's number lies in our spread. "
        "*not comparable* says why below.",
        f"- **Code**: runs from git commit {commits}; table written at {git_head()}.",
        "",
    ]


def notes(df: pd.DataFrame, coll: Collection) -> list[str]:
    out = ["", "## Why each verdict", ""]
    for _, r in df.iterrows():
        if r.seeds_run == 0:
            continue
        out.append(f"- {r.domain} / {r.algorithm}: episodes **{r.verdict_episodes or '-'}** "
                   f"({r.verdict_episodes_reason}); MaxReturn **{r.verdict_max_return or '-'}** "
                   f"({r.verdict_max_return_reason}).")
    missing = [f"{r.domain}/{r.algo}" for _, r in df.iterrows() if r.seeds_run == 0]
    if missing:
        out += ["", f"Missing (no finished runs): {', '.join(missing)}."]
    if coll.problems:
        out += ["", "## Skipped files", ""] + [f"- `{p.path}`: {p.message}" for p in coll.problems]
    if coll.unfinished:
        out += ["", f"Unfinished runs (no DONE; not used, see --include-unfinished): "
                    f"{', '.join(str(u) for u in coll.unfinished)}."]
    return out


def write_table(results: str | Path, profile: str | None = None, seeds: int | None = None,
                include_unfinished: bool = False, echo: bool = True) -> pd.DataFrame:
    results = Path(results)
    df, coll = build_table(results, profile, seeds, include_unfinished)
    for p in coll.problems:
        print(f"reproduce.table: skipped {p.path}: {p.message}", file=sys.stderr)
    shown = display_frame(df)
    results.mkdir(parents=True, exist_ok=True)
    df.to_csv(results / "table.csv", index=False)
    md = header(coll) + [markdown_table(shown)] + notes(df, coll)
    (results / "table.md").write_text("\n".join(md) + "\n")
    # The README's short form: the cells that ran, the columns a reader compares first.
    ran = shown[df["seeds_run"].to_numpy() > 0]
    (results / "table_compact.md").write_text(markdown_table(ran[COMPACT_COLUMNS]) + "\n")
    if echo:
        print("\n".join(header(coll)[2:]))
        print(text_table(shown))
        print("\n".join(notes(df, coll)))
        print(f"\nwrote {results / 'table.md'} and {results / 'table.csv'}")
    return df


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default=None,
                   help="count missing seeds against this profile's domains/algos/seeds")
    p.add_argument("--seeds", type=int, default=None, help="seeds expected per cell")
    p.add_argument("--include-unfinished", action="store_true",
                   help="also use runs without DONE (in progress or failed)")
    args = p.parse_args(argv)
    if args.profile and args.profile not in profiles():
        print(f"reproduce.table: error: unknown profile {args.profile!r}", file=sys.stderr)
        return 2
    write_table(args.results, args.profile, args.seeds, args.include_unfinished)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
