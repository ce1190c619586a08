"""Each algorithm at its own best batch size (issue 15): selection, then held-out seeds.

    python -m reproduce.sweep --profile bestbatch --results results        # the grid, seeds 0-4
    python -m reproduce.best_batch select --results results                # -> selection.json
    python -m reproduce.sweep --profile bestbatch-confirm --results results  # seeds 5-9
    python -m reproduce.best_batch report --results results                # (make best-batch)

- **Grid** (profile ``bestbatch``): per domain, each algorithm family (TRPO, TR-c-Q-Prop) at
  every batch size the profile lists (the batch of a run name is its ``batch_size`` in
  hyperparams.toml). Per cell: seeds crossed / counted, median episodes to threshold with
  its IQR, and, for Q-Prop, the median over the cell's runs of each run's median over
  iterations of ``signal_var_after / signal_var_before`` (< 1: the control variate reduced
  the variance of the learning signal).
- **Episodes, censoring, medians, counting**: exactly ``reproduce.compare``'s rules (its
  functions are called; its rules are printed in the report). A seed that never crossed is
  censored at its budget and counts as +inf in a median or quartile, so a median or quartile
  that falls on a censored seed is "> x" / ∞.
- **Choice** per domain and family: the lowest median; ties go to more seeds crossed, then to
  the smaller batch. A cell without counted runs cannot be chosen. ``select`` chooses for
  each domain whose grid is complete, or whose choice no outcome of its missing runs can
  change (:mod:`reproduce.best_batch_decided`), and lists the others as pending
  (``--partial``: choose on an incomplete grid, and the file says ``"complete": false``);
  run it again as domains complete. A choice once written is never changed.
- **Selection file** ``<results>/bestbatch/selection.json``: ``{"algos": {"<Domain>":
  ["<trpo run name>", "<qprop-c run name>"]}, ...}``. Profile ``bestbatch-confirm`` reads
  its algorithms from it (profiles.toml ``algos_from``) and runs them on seeds 5-9.
- **Held-out verdict** per domain, on the confirmation seeds only: ratio of medians Q-Prop /
  TRPO with ``reproduce.compare``'s bootstrap CI; *Q-Prop faster* if the CI lies below 1,
  *TRPO faster* if above, else *indistinguishable* (or compare's *not comparable* / *too few
  seeds*). One-sided Mann-Whitney U p (H1: Q-Prop needs fewer episodes), censored = +inf.
- Missing or uncounted runs are listed, never fatal: the report works on a partial grid.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.algo_names import paper_name
from reproduce.baseline_runaway import runaways
from reproduce.best_batch_decided import cell_bounds, decided, decided_early_record
from reproduce.best_batch_heldout import CONFIRM, FAMILIES, heldout, heldout_rows, pooled_p
from reproduce.best_batch_text import (
    INTRO,
    SELECTION,
    TRUNCATION_NOTE,
    chosen_mark,
    domain_status,
    figure_status,
)
from reproduce.best_batch_truncation import truncation_results, truncation_rows
from reproduce.compare import METHOD, Counted, Side, counted_runs, return_after_crossing
from reproduce.compare_stats import censored_median, censored_quantile, fmt_episodes
from reproduce.results import Run
from reproduce.spec import (
    SpecError,
    base_algo,
    check_profile,
    merged_overrides,
    profile_dir,
    resolve_runs,
    selection_choices,
)
from reproduce.stability_runs import divergences_text
from reproduce.table_format import markdown_table

GRID = "bestbatch"

# ---------------------------------------------------------------------- pure functions

def var_ratio(run: Run) -> float:
    """Median over iterations of signal_var_after / signal_var_before (NaN if not recorded)."""
    df = run.progress
    if C.signal_var_after not in df.columns or C.signal_var_before not in df.columns:
        return math.nan
    after = pd.to_numeric(df[C.signal_var_after], errors="coerce").to_numpy(dtype=float)
    before = pd.to_numeric(df[C.signal_var_before], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(after) & np.isfinite(before) & (before > 0)
    return float(np.median(after[ok] / before[ok])) if ok.any() else math.nan


@dataclass
class Cell:
    domain: str
    family: str  # the base algorithm: trpo or qprop-c
    algo: str  # the run name
    batch: int
    side: Side
    expected: int  # seeds the profile asks for

    @property
    def crossed(self) -> int:
        return int((~self.side.censored).sum())

    @property
    def median(self) -> float:
        return censored_median(self.side.values, self.side.censored) if self.side.runs \
            else math.nan

    def quartiles(self) -> tuple[float, float]:
        s = self.side
        return (censored_quantile(s.values, s.censored, 0.25),
                censored_quantile(s.values, s.censored, 0.75))

    @property
    def tail_return(self) -> float:
        return _tail(self.side.runs)

    @property
    def var_ratio(self) -> float:
        vals = [x for x in map(var_ratio, self.side.runs) if math.isfinite(x)]
        return float(np.median(vals)) if vals else math.nan


def _tail(runs: list[Run]) -> float:
    """Median over the crossed runs of :func:`~reproduce.compare.return_after_crossing`."""
    vals = [x for x in map(return_after_crossing, runs) if math.isfinite(x)]
    return float(np.median(vals)) if vals else math.nan


def choose(cells: list[Cell]) -> Cell | None:
    """The cell with the lowest median; ties -> more seeds crossed -> smaller batch."""
    eligible = [c for c in cells if c.side.runs]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (c.median, -c.crossed, c.batch))


# ---------------------------------------------------------------------- a results tree

def batch_of(domain: str, algo: str) -> int:
    return int(merged_overrides(domain, algo)["batch_size"])


def families(algos: list[str]) -> dict[str, list[str]]:
    """Family (base algorithm) -> run names, as listed."""
    out: dict[str, list[str]] = {}
    for a in algos:
        out.setdefault(base_algo(a), []).append(a)
    return out


def missing_runs(profile: str, counted: Counted, results: Path) -> list[str]:
    """The profile's runs that are not counted (absent, unfinished, failed, unreadable)."""
    have = {f"{r.domain}/{r.algo}/seed{r.seed}" for r in counted.runs}
    return [s.key for s in resolve_runs(profile, results=results) if s.key not in have]


def missing_per_domain(grid: dict[str, list[Cell]], missing: list[str]) -> dict[str, int]:
    """How many of each domain's grid runs are not counted yet (keys ``<Domain>/...``)."""
    return {d: sum(k.startswith(f"{d}/") for k in missing) for d in grid}


def selection_grid(results: Path) -> tuple[dict[str, list[Cell]], Counted]:
    """Domain -> the grid's cells (family, then batch order), and the counted runs."""
    prof = check_profile(GRID)
    counted = counted_runs(results, GRID, set(prof["algos"]))
    grid: dict[str, list[Cell]] = {}
    for d in prof["domains"]:
        cells = [Cell(d, fam, a, batch_of(d, a),
                      Side(a, [r for r in counted.runs if r.domain == d and r.algo == a],
                           counted.excluded.get((d, a), 0)), int(prof["seeds"]))
                 for fam, names in families(list(prof["algos"])).items() for a in names]
        grid[d] = sorted(cells, key=lambda c: (FAMILIES.index(c.family)
                                               if c.family in FAMILIES else 9, c.batch))
    return grid, counted


def chosen_cells(grid: dict[str, list[Cell]]) -> dict[str, dict[str, Cell]]:
    out: dict[str, dict[str, Cell]] = {}
    for d, cells in grid.items():
        for fam in dict.fromkeys(c.family for c in cells):
            pick = choose([c for c in cells if c.family == fam])
            if pick is not None:
                out.setdefault(d, {})[fam] = pick
    return out


def picks_if_decided(cells: list[Cell]) -> dict[str, Cell]:
    """Family -> its decided cell, if every family of the domain is decided; else {}."""
    out = {f: decided([c for c in cells if c.family == f]) for f in FAMILIES}
    return {f: c for f, c in out.items() if c is not None} if all(out.values()) else {}


def write_selection(results: Path, partial: bool = False) -> Path:
    """Write ``<results>/bestbatch/selection.json`` from the grid, one domain at a time:

    - a domain whose grid is complete (all its runs counted) gets its choice, and the
      confirmation (``bestbatch-confirm``) can run it while other domains' grids go on;
    - a domain with runs missing gets its choice too once no outcome of them can change
      it (:func:`reproduce.best_batch_decided.decided`, recorded under ``"decided_early"``
      with each cell's median bounds);
    - any other domain with runs missing is listed under ``"pending"`` (how many), unless
      ``partial`` chooses on what it has (the file then says ``"complete": false``);
    - a choice once written is kept: SpecError if the grid now picks another batch for a
      domain the file already chose (its held-out runs were chosen by the old pick), and
      when no domain can be chosen yet."""
    grid, counted = selection_grid(results)
    missing = missing_runs(GRID, counted, results)
    pending = missing_per_domain(grid, missing)
    early = {d: picks_if_decided(grid[d]) for d in grid if pending[d]}
    ready = [d for d in grid if partial or not pending[d] or early[d]]
    if not ready:
        raise SpecError(f"no domain of the {GRID} grid is complete ({len(missing)} runs not "
                        f"counted, e.g. {', '.join(missing[:3])}); finish the sweep, or pass "
                        "--partial")
    picks = chosen_cells(grid)
    for d, fixed_early in early.items():
        if fixed_early:
            picks[d] = fixed_early
    lacking = [f"{d}/{f}" for d in ready for f in FAMILIES if f not in picks.get(d, {})]
    if lacking:
        raise SpecError(f"no counted runs to choose from for {', '.join(lacking)}")
    path = profile_dir(results, GRID) / SELECTION
    algos = {d: [picks[d][f].algo for f in FAMILIES] for d in ready}
    earlier = selection_choices(path)
    before = decided_early_record(path)
    changed = [f"{d}: {earlier[d]} -> {algos[d]}" for d in algos
               if d in earlier and earlier[d] != algos[d]]
    if changed:
        raise SpecError(f"{path} chose otherwise before ({'; '.join(changed)}); its held-out "
                        "runs were picked by the earlier choice. Delete the file to choose "
                        "again.")
    doc = {"profile": GRID, "complete": not missing, "missing": missing,
           "pending": {d: n for d, n in pending.items() if n and d not in ready},
           "rule": "lowest median episodes (censored = +inf); ties: more seeds crossed, "
                   "then the smaller batch; a domain is chosen once its grid is complete, "
                   "or once no outcome of its missing runs can change the choice (every "
                   "missing seed at 0 episodes or censored: the chosen cell's largest "
                   "possible median below every other cell's smallest)",
           "decided_early": {**before, **{d: {"missing": pending[d], "median_bounds": {
               c.algo: [_num(b) for b in cell_bounds(c)] for c in grid[d]}}
               for d in ready if pending[d] and early.get(d) and d not in before}},
           "algos": algos,
           "cells": {d: {f: {"algo": c.algo, "batch": c.batch, "median": _num(c.median),
                             "crossed": c.crossed, "counted": len(c.side.runs)}
                         for f, c in picks[d].items()} for d in ready}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _num_text(x: object) -> str:
    return "-" if not math.isfinite(float(x)) else f"{float(x):,.3g}"  # type: ignore[arg-type]


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


# ---------------------------------------------------------------------- report

def grid_rows(grid: dict[str, list[Cell]], picks: dict[str, dict[str, Cell]]
              ) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for d, cells in grid.items():
        for c in cells:
            q1, q3 = c.quartiles()
            bound = c.side.median.bound
            rows.append({"section": "selection", "domain": d, "family": c.family,
                         "algo": c.algo, "batch": c.batch, "expected": c.expected,
                         "counted": len(c.side.runs), "crossed": c.crossed,
                         "median": c.median, "median_bound": bound, "q1": q1, "q3": q3,
                         "var_ratio": c.var_ratio, "tail_return": c.tail_return,
                         "baseline_runaway": "; ".join(x.text() for x in runaways(c.side.runs)),
                         "critic_diverged": divergences_text(c.side.runs),
                         "chosen": picks.get(d, {}).get(c.family) is c})
    return rows


def _iqr(row: dict[str, object]) -> str:
    med = fmt_episodes(float(row["median"]), float(row["median_bound"]))  # type: ignore[arg-type]
    if not row["counted"]:
        return "-"
    return f"{med} [{fmt_episodes(float(row['q1']))}–{fmt_episodes(float(row['q3']))}]"  # type: ignore[arg-type]


def write_report(results: str | Path) -> tuple[Path, Path, list[Path]]:
    from reproduce.best_batch_plot import plot_domain, plot_verdicts

    results = Path(results)
    home = profile_dir(results, GRID)
    grid, counted = selection_grid(results)
    picks = chosen_cells(grid)
    items, confirm, why_none = heldout(results)
    g_rows, h_rows = grid_rows(grid, picks), heldout_rows(items)
    fixed = selection_choices(home / SELECTION)
    early = {d: int(v["missing"]) for d, v in decided_early_record(home / SELECTION).items()}
    missing = missing_runs(GRID, counted, results)
    left = missing_per_domain(grid, missing)
    home.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(g_rows + h_rows).to_csv(home / "best_batch.csv", index=False)
    table = [{"Domain": r["domain"], "Algorithm": paper_name(str(r["family"])),
              "Batch": f"{r['batch']:,}", "Run name": f"`{r['algo']}`",
              "Crossed/counted (of)": f"{r['crossed']}/{r['counted']} ({r['expected']})",
              "Median episodes [IQR]": _iqr(r),
              "Return after crossing": _num_text(r["tail_return"]),
              "Var. after/before": ("-" if not math.isfinite(float(r["var_ratio"]))  # type: ignore[arg-type]
                                    else f"{float(r['var_ratio']):.3f}"),  # type: ignore[arg-type]
              "Baseline ran away": r["baseline_runaway"] or "-",
              "Critic diverged": r["critic_diverged"] or "-",
              "Chosen": chosen_mark(r, fixed, left)} for r in g_rows]
    chosen_tbl = [{"Domain": d, **{paper_name(f): (f"{p[f].batch:,} (`{p[f].algo}`)" if f in p
                                                   else "-") for f in FAMILIES},
                   "Status": domain_status(d, fixed, left, early)}
                  for d, p in ((d, picks.get(d, {})) for d in grid)]
    held = [{"Domain": h.domain,
             **{name: f"`{side.algo}` {side.seeds_cell()}: "
                      f"{fmt_episodes(side.median.median, side.median.bound)} (after crossing: "
                      f"{_num_text(_tail(side.runs))})"
                for name, side in (("TR-c-Q-Prop", h.result.a), ("TRPO", h.result.b))},
             "Ratio Q-Prop/TRPO [95% CI]": h.result.ratio_text,
             "Mann-Whitney p (one-sided)": "-" if math.isnan(h.p) else f"{h.p:.3g}",
             "Verdict": h.verdict} for h in items]
    pooled = pooled_p(items)
    held_seeds = [{"Domain": r["domain"], "Algorithm": paper_name(str(r["family"])),
                   "Run name": f"`{r['algo']}`", "Episodes per seed": r["seeds"],
                   "Flagged": r["flagged"] or "-"} for r in h_rows]
    term = truncation_results(results, GRID)
    trunc = truncation_rows(term)
    if confirm is not None:
        missing = missing + missing_runs(CONFIRM, confirm, results)
    notes = counted.notes + (confirm.notes if confirm is not None else [])
    figs: list[Path] = []
    for d, cells in grid.items():
        hs = [h for h in items if h.domain == d]
        figs += plot_domain(d, cells, picks.get(d, {}), hs[0] if hs else None,
                            home / "figures", f"best_batch_{d}",
                            figure_status(d, fixed, left),
                            {fam: r.a for fam, r in term if r.domain == d})
    if items:
        figs += plot_verdicts(items, pooled, home / "figures")
    lines = [
        "# Each algorithm at its own best batch size (issue 15)", "",
        f"Regenerate: `python -m reproduce.best_batch report --results {results}`", "",
        INTRO + " Rules of reproduce.compare:", "",
        METHOD, "",
        "## Selection grid", "",
        markdown_table(pd.DataFrame(table)) if table else "(no grid)", "",
        "## Chosen batch per algorithm", "",
        markdown_table(pd.DataFrame(chosen_tbl)) if chosen_tbl else "(nothing to choose)", "",
        "## Held-out comparison (seeds 5-9)", "",
        (markdown_table(pd.DataFrame(held)) if held else f"Not available: {why_none}"), "",
        *([f"All {len(items)} domains at once: one-sided p = {pooled:.3g} that Q-Prop needs "
           "fewer episodes (Stouffer's combination of the per-domain Mann-Whitney p's, equal "
           "weights, scipy.stats.combine_pvalues).", ""] if math.isfinite(pooled) else []),
        *(["Each held-out seed (censored: > its censoring point; flagged as in the grid):",
           "", markdown_table(pd.DataFrame(held_seeds)), ""] if held_seeds else []),
        "## Sensitivity: the time limit at batch 1000 (profile `truncation`)", "",
        TRUNCATION_NOTE, "",
        (markdown_table(pd.DataFrame(trunc)) if trunc else "No runs of profile `truncation` "
         "yet."), "",
        "## Missing runs", "",
        *([f"- `{k}`" for k in missing] or ["- none"]), "",
        "## Runs not counted, or flagged", "",
        *([f"- {n}" for n in notes] or ["- none"]), "",
        *[f"![{p.stem}](figures/{p.name})" for p in figs if p.suffix == ".png"], "",
    ]
    md = home / "best_batch.md"
    md.write_text("\n".join(lines))
    return md, home / "best_batch.csv", figs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.best_batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", choices=("report", "select"), default="report")
    p.add_argument("--results", default="results")
    p.add_argument("--partial", action="store_true",
                   help="select: choose on an incomplete grid (recorded in the file)")
    args = p.parse_args(argv)
    try:
        if args.command == "select":
            print(f"wrote {write_selection(Path(args.results), args.partial)}")
            return 0
        md, csv, figs = write_report(args.results)
        for path in (md, csv, *figs):
            print(f"wrote {path}")
    except SpecError as exc:
        print(f"reproduce.best_batch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
