"""Does algorithm A reach the threshold in fewer episodes than algorithm B?

    python -m reproduce.compare --results results --a qprop-c-strong --b trpo-strong \\
        [--profile strong] [--domains Reacher,Hopper,Swimmer] [--out NAME]

Reads the runs of one profile's tree, `<results>/<profile>/runs` (default: the one profile
whose tree has runs of A or B); with `--profile-b P`, B's runs come from P's tree instead
(the same cells run under two profiles, e.g. `truncation` against `bestbatch`; the report
names any rule of the two profiles that differs). Writes
`<results>/<profile>/compare_<a>_vs_<b>.md` (or `--out`; a bare file name goes under
`<results>/<profile>`) and
`<results>/<profile>/figures/compare_<a>_vs_<b>.png/.svg` (or the `--out` stem), prints the
table.

- **Crossing**: the first progress row of a finished run (DONE) whose metric (`run.metric`)
  exceeds (>) the domain's threshold, NaN rows skipped; episodes = its env_steps / 1000.
- **Censoring**: a finished run that never crossed is right-censored at its budget
  (`budget_steps / 1000`; its last env_steps / 1000 when the budget is unknown or it ended
  before it). Its true value is above that point.
- **Median**: censored values count as +inf, so the median is "> x" when half or more of the
  seeds are censored (x: the median with censored seeds at their censoring points, a lower
  bound). Its spread: bootstrap 95% CI with >= 3 seeds (lower end from medians with censored
  seeds at their censoring points, upper end with censored = +inf, so ∞ when censoring reaches
  the upper tail), else min-max.
- **Ratio A/B** = median(A) / median(B), censored = +inf (inf if only A's median is censored, 0
  if only B's, undefined if both). CI: seeds resampled within each algorithm independently
  (`scipy.stats.bootstrap`, unpaired, percentile, 10000 resamples, rng 0). Each resample
  gives a lower bound L = median_cp(A) / median_inf(B) and an upper bound U = median_inf(A) /
  median_cp(B) of its ratio (cp: censored at the censoring point; x/inf = 0, inf/x = inf; L = U
  = the plain ratio when no median is censored). CI = [2.5th percentile of L, 97.5th
  percentile of U] (on log ratios, +-inf clipped to +-1e4; an end reaching an unbounded
  resample is 0 or ∞). Censoring can only widen the CI, never narrow it.
- **Verdict**: *A faster* if the CI's upper end < 1, *A slower* if its lower end > 1, *no
  difference shown* otherwise; *not comparable* when both medians are censored; *too few
  seeds* (no CI) with < 3 finished seeds on a side.
- **Diverged runs count**: a run whose training stopped on a NonFiniteError (no DONE; the
  last attempt in log.txt) is a result, not a gap: crossed if it crossed before, else
  censored where it stopped (+inf in the median), and named.
- **Runs not counted** are listed by name: unfinished (no DONE), failed (no DONE and the last
  attempt in log.txt ended in another exception than an interruption; or a DONE whose
  "stopped" is not budget/early), unreadable progress.csv. A finished run whose log records
  a NonFiniteError is counted, and flagged.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.compare_plot import plot
from reproduce.compare_stats import (
    MedianCI,
    fmt_median,
    fmt_ratio,
    median_ci,
    ratio_bounds,
    ratio_ci,
    verdict,
)
from reproduce.results import Run, find_profile, load_runs, log_status
from reproduce.runner import LOG
from reproduce.spec import (
    EPISODE_STEPS,
    SpecError,
    check_profile,
    domains,
    profile_dir,
    threshold,
)
from reproduce.table_format import markdown_table, text_table

OK_STOPPED = ("budget", "early")
NO_RUNS = "(no runs of A or B found)"
METHOD = "- " + __doc__.split("\n- ", 1)[1].strip()  # the docstring's rules, in the report


# ---------------------------------------------------------------------- one run

@dataclass(frozen=True)
class Crossing:
    episodes: float  # at the first crossing, or the censoring point when censored
    censored: bool


def episodes_to_threshold(run: Run, thresh: float | None = None) -> Crossing:
    """The run's episodes (1000 env steps) to ``thresh`` (the domain's by default)."""
    thresh = threshold(run.domain) if thresh is None else thresh
    df = run.progress
    steps = np.asarray(df[C.env_steps], dtype=float)
    metric = np.asarray(df[run.metric], dtype=float)
    above = np.flatnonzero(np.isfinite(metric) & np.isfinite(steps) & (metric > thresh))
    if above.size:
        return Crossing(steps[above[0]] / EPISODE_STEPS, False)
    finite = steps[np.isfinite(steps)]
    last = finite[-1] / EPISODE_STEPS if finite.size else math.nan
    budget = run.budget_steps
    point = budget / EPISODE_STEPS if budget is not None else last
    if last < point:  # ended before its budget: observed only up to here
        point = last
    return Crossing(float(point), True)


def return_after_crossing(run: Run, thresh: float | None = None) -> float:
    """The run's mean return (its metric) over the rows from its first crossing to its end:
    the early-stop tail. Well below the threshold, the crossing was a noisy batch, not a
    policy that reached it (a batch of one Swimmer episode crosses 90 on one lucky episode).
    NaN for a run that never crossed."""
    cross = episodes_to_threshold(run, thresh)
    if cross.censored:
        return math.nan
    df = run.progress
    tail = df.loc[np.asarray(df[C.env_steps], dtype=float) >= cross.episodes * EPISODE_STEPS,
                  run.metric]
    return float(np.nanmean(np.asarray(tail, dtype=float)))


# ---------------------------------------------------------------------- a results tree

@dataclass
class Side:
    algo: str
    runs: list[Run]
    unfinished: int = 0  # runs present but not counted (listed in the notes)
    values: np.ndarray = field(init=False)
    censored: np.ndarray = field(init=False)
    median: MedianCI = field(init=False)

    def __post_init__(self) -> None:
        xs = [episodes_to_threshold(r) for r in self.runs]
        self.values = np.array([x.episodes for x in xs], dtype=float)
        self.censored = np.array([x.censored for x in xs], dtype=bool)
        self.median = median_ci(self.values, self.censored)

    def seeds_cell(self) -> str:
        text = f"{int((~self.censored).sum())}/{len(self.runs)}" if self.runs else "no runs"
        return text + (f" (+{self.unfinished} not counted)" if self.unfinished else "")


@dataclass
class DomainResult:
    domain: str
    threshold: float
    a: Side
    b: Side
    ratio: float = field(init=False)  # median(A) / median(B), censored = +inf
    lo: float = field(init=False)  # 95% CI (NaN with too few seeds)
    hi: float = field(init=False)
    bounds: tuple[float, float] = field(init=False)  # of the ratio, given the censoring
    verdict: str = field(init=False)
    ratio_text: str = field(init=False)

    def __post_init__(self) -> None:
        a, b = self.a, self.b
        self.ratio, self.lo, self.hi = ratio_ci(a.values, a.censored, b.values, b.censored)
        self.bounds = ((math.nan, math.nan) if not (a.runs and b.runs) else
                       ratio_bounds(a.values, a.censored, b.values, b.censored))
        self.verdict = verdict(self.ratio, self.lo, self.hi, len(a.runs), len(b.runs))
        self.ratio_text = fmt_ratio(self.ratio, self.lo, self.hi, self.bounds)


@dataclass
class Counted:
    """The runs of some algorithms in one profile's tree that count (finished, readable,
    stopped by budget or early stop), a note per run left out or flagged, and how many runs
    of each (domain, algo) were left out."""
    runs: list[Run]
    notes: list[str]
    excluded: dict[tuple[str, str], int]


def counted_runs(results: str | Path, profile: str, algo_of: set[str]) -> Counted:
    """The counting rule of the module docstring ("Runs not counted"), for ``algo_of``."""
    check_profile(profile)
    coll = load_runs(results, profile)
    notes: list[str] = []
    excluded: dict[tuple[str, str], int] = {}

    def note(path: Path, kind: str, detail: str, counted: bool = False) -> None:
        dom, algo = path.parent.parent.name, path.parent.name
        notes.append(f"`{dom}/{algo}/{path.name}`: {kind}: {detail}")
        if not counted:
            excluded[(dom, algo)] = excluded.get((dom, algo), 0) + 1

    for u in coll.unfinished:
        if u.parent.name in algo_of:
            note(u, *log_status(u))
    for p in coll.problems:
        if p.path.parent.parent.name in algo_of:
            note(p.path.parent, "unreadable progress.csv", p.message)
    kept: list[Run] = []
    for r in coll.runs:
        if r.algo not in algo_of:
            continue
        if r.nonfinite:
            cross = episodes_to_threshold(r)
            how = (f"crossed at {cross.episodes:,.0f} episodes before it" if not cross.censored
                   else f"never crossed: censored at {cross.episodes:,.0f} episodes")
            note(r.path, "diverged", f"{r.nonfinite} (counted: {how})", counted=True)
            kept.append(r)
            continue
        stopped = (r.done or {}).get("stopped")
        if stopped not in OK_STOPPED:
            note(r.path, "failed", f"DONE has stopped={stopped!r} (not budget/early)")
            continue
        log = r.path / LOG
        if log.is_file() and "NonFiniteError" in log.read_text(errors="replace"):
            note(r.path, "flagged", "finished, but its log records a NonFiniteError "
                 "(counted)", counted=True)
        kept.append(r)
    return Counted(kept, notes, excluded)


# A profile's keys that do not change how a run is budgeted, stopped or counted.
NOT_RULES = {"description", "domains", "algos", "algos_from", "seeds", "first_seed", "order"}


def rule_differences(profile: str, profile_b: str) -> list[str]:
    """The rules (budget, early stop...) on which two profiles differ, one line each."""
    pa, pb = check_profile(profile), check_profile(profile_b)
    keys = sorted((set(pa) | set(pb)) - NOT_RULES)
    return [f"{k}: {pa.get(k, '(unset)')!r} in {profile}, {pb.get(k, '(unset)')!r} in "
            f"{profile_b}" for k in keys if pa.get(k) != pb.get(k)]


def compare(results: str | Path, a: str, b: str, domain_list: list[str] | None = None,
            profile: str | None = None, profile_b: str | None = None
            ) -> tuple[list[DomainResult], list[str]]:
    """One DomainResult per domain, and a line per run left out of (or flagged in) them,
    from the runs of ``profile``'s tree (default: ``find_profile``); B's from
    ``profile_b``'s tree when given."""
    profile = profile or find_profile(results, [a, b] if profile_b is None else [a])
    profile_b = profile_b or profile
    if profile_b == profile:
        both = counted_runs(results, profile, {a, b})
        per_side = [both, both]
        notes = both.notes
    else:
        per_side = [counted_runs(results, profile, {a}), counted_runs(results, profile_b, {b})]
        notes = [f"({prof}) {n}" for prof, c in zip((profile, profile_b), per_side, strict=True)
                 for n in c.notes]
    seen = {r.domain for c in per_side for r in c.runs} | {
        k[0] for c in per_side for k in c.excluded}
    doms = domain_list or [d for d in domains() if d in seen]
    out = []
    for d in doms:
        sides = [Side(x, [r for r in c.runs if r.domain == d and r.algo == x],
                      c.excluded.get((d, x), 0)) for x, c in zip((a, b), per_side, strict=True)]
        out.append(DomainResult(d, threshold(d), *sides))
    return out, notes


# ---------------------------------------------------------------------- outputs

def table_rows(rows: list[DomainResult], a: str, b: str) -> list[dict[str, str]]:
    return [{"Domain": r.domain, "Threshold": f"{r.threshold:g}",
             f"A={a}: crossed/finished": r.a.seeds_cell(),
             "A: median episodes": fmt_median(r.a.median),
             f"B={b}: crossed/finished": r.b.seeds_cell(),
             "B: median episodes": fmt_median(r.b.median),
             "Ratio A/B [95% CI]": r.ratio_text, "Verdict": r.verdict} for r in rows]


def write_report(results: str | Path, a: str, b: str, domain_list: list[str] | None = None,
                 out: str | None = None, profile: str | None = None,
                 profile_b: str | None = None) -> tuple[Path, list[Path], str]:
    """Write the markdown and the figure; return their paths and the printed table."""
    results = Path(results)
    profile = profile or find_profile(results, [a, b] if profile_b is None else [a])
    rows, notes = compare(results, a, b, domain_list, profile, profile_b)
    two = profile_b is not None and profile_b != profile
    source = ([f"A's runs from `{profile}`'s tree, B's from `{profile_b}`'s. Rules that "
               "differ between the two profiles: "
               + ("; ".join(rule_differences(profile, profile_b)) or "none") + ".", ""]
              if two else [])
    home = profile_dir(results, profile)
    md_path = Path(out) if out else home / f"compare_{a}_vs_{b}.md"
    if out and md_path.parent == Path("."):
        md_path = home / md_path
    if md_path.suffix != ".md":
        md_path = md_path.with_suffix(".md")
    fig_dir = md_path.parent / "figures"
    figs = plot(rows, a, b, fig_dir, md_path.stem) if rows else []
    table = table_rows(rows, a, b)
    cmd = (f"python -m reproduce.compare --results {results} --profile {profile} --a {a} --b {b}"
           + (f" --profile-b {profile_b}" if two else "")
           + (f" --domains {','.join(domain_list)}" if domain_list else "")
           + (f" --out {out}" if out else ""))
    lines = [
        f"# Episodes to threshold: A = {a} vs B = {b}", "",
        f"Regenerate: `{cmd}`", "",
        *source,
        METHOD, "",
        (markdown_table(pd.DataFrame(table)) if table else NO_RUNS), "",
        "## Runs not counted, or flagged", "",
        *([f"- {n}" for n in notes] or ["- none: every run of A and B found is finished and "
                                         "counted."]), "",
    ]
    if figs:
        lines += [f"![comparison](figures/{figs[0].name})", ""]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines))
    return md_path, figs, text_table(pd.DataFrame(table)) if table else NO_RUNS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default=None,
                   help="whose tree (<results>/<profile>/runs); default: the one profile "
                        "with runs of A or B")
    p.add_argument("--profile-b", default=None,
                   help="read B's runs from this profile's tree (default: --profile's)")
    p.add_argument("--a", required=True, help="algorithm A (run directory name)")
    p.add_argument("--b", required=True, help="algorithm B (run directory name)")
    p.add_argument("--domains", help="comma-separated domains (default: every one with runs)")
    p.add_argument("--out", help="markdown file (default "
                                 "<results>/<profile>/compare_<a>_vs_<b>.md)")
    args = p.parse_args(argv)
    doms = [d.strip() for d in args.domains.split(",") if d.strip()] if args.domains else None
    bad = [d for d in doms or [] if d not in domains()]
    if bad:
        p.error(f"unknown domain(s) {', '.join(bad)}; valid: {', '.join(domains())}")
    try:
        md, figs, table = write_report(args.results, args.a, args.b, doms, args.out,
                                       args.profile, args.profile_b)
    except SpecError as exc:
        print(f"reproduce.compare: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    for path in [md, *figs]:
        print(f"wrote {path}")
    return 0 if figs else 1


if __name__ == "__main__":
    sys.exit(main())
