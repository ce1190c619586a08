"""Issue 14 at a glance: divergences out of runs, the authors' critic against each fix, per
profile and domain, read from every profile with a ``stability`` table in profiles.toml.

    python -m reproduce.stability_summary --results results      (make stability runs it)

The summary (``<results>/stability_summary.md``) has per (profile, domain, variant) the
seeds whose critic diverged (:mod:`qprop_tf.divergence`), the median largest TD loss, the
seeds that crossed the threshold and the median episodes (censored runs count as +inf, as
everywhere), what the variant keeps of its best return at the end, and the CPU-hours its runs took
(process CPU time; wall time for runs that predate ``cpu_time``). Each profile's
``stability.md`` (:mod:`reproduce.stability`) has the tests, the mechanism and the figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from reproduce.compare import Side
from reproduce.compare_stats import fmt_median
from reproduce.results import Run
from reproduce.spec import SpecError, profile_dir, profiles, threshold
from reproduce.stability import load, roles
from reproduce.stability_runs import after_peak, domain_variants, reference_side
from reproduce.table_format import markdown_table

OUT = "stability_summary.md"


def stability_profiles(results: Path) -> list[str]:
    """The profiles with a ``stability`` table and a runs tree under ``results``."""
    return [p for p, table in profiles().items()
            if "stability" in table and (profile_dir(results, p) / "runs").is_dir()]


def cpu_hours(runs: list[Run]) -> float:
    """CPU-hours the runs took: each run's last ``cpu_time`` (its ``time`` if it has none)."""
    seconds = 0.0
    for r in runs:
        last = r.progress.iloc[-1] if len(r.progress) else None
        if last is None:
            continue
        cpu = float(last.get(C.cpu_time, np.nan))
        seconds += cpu if np.isfinite(cpu) else float(last.get(C.time, 0.0))
    return seconds / 3600


def summary_rows(results: Path, profile: str) -> list[dict[str, str]]:
    """One row per (domain, variant) of the profile, its baseline first, its reference last."""
    baseline, reference, baseline_profile = roles(profile)
    runs, excluded, _, seen = load(results, profile, baseline, reference, baseline_profile)
    rows = []
    for d in seen:
        variants = domain_variants(runs, excluded, d, baseline, reference)
        ref = reference_side(runs, d, reference)
        for v in variants:
            side = Side(v.algo, v.runs)
            kept = [p.retained for p in map(after_peak, v.runs) if np.isfinite(p.retained)]
            losses = [r.max_loss for r in v.records if np.isfinite(r.max_loss)]
            rows.append({
                "profile": profile, "domain": f"{d} ({threshold(d):g})",
                "variant": v.algo + (" (authors' critic)" if v.algo == baseline else ""),
                "critic diverged": f"{len(v.diverged_seeds)}/{len(v.records)}",
                "largest TD loss, median": f"{np.median(losses):.3g}" if losses else "-",
                "crossed": side.seeds_cell(),
                "median episodes [95% CI]": fmt_median(side.median),
                "kept of its best return, median": f"{np.median(kept):.0%}" if kept else "-",
                "CPU-h": f"{cpu_hours(v.runs):.2f}"})
        if ref.runs:
            kept = [p.retained for p in map(after_peak, ref.runs) if np.isfinite(p.retained)]
            rows.append({
                "profile": profile + (f" ({baseline_profile})" if baseline_profile else ""),
                "domain": f"{d} ({threshold(d):g})", "variant": f"{reference} (reference)",
                "critic diverged": "-", "largest TD loss, median": "-",
                "crossed": ref.seeds_cell(), "median episodes [95% CI]": fmt_median(ref.median),
                "kept of its best return, median": f"{np.median(kept):.0%}" if kept else "-",
                "CPU-h": f"{cpu_hours(ref.runs):.2f}"})
    return rows


def write_summary(results: Path) -> tuple[Path, str]:
    rows = [r for p in stability_profiles(results) for r in summary_rows(results, p)]
    table = markdown_table(pd.DataFrame(rows)) if rows else "(no stability profile has runs)"
    text = "\n".join([
        "# Critic stability: divergences out of runs, per profile and domain", "",
        "Regenerate: `python -m reproduce.stability_summary --results "
        f"{results}` (or `make stability`).", "",
        __doc__.split("\n\n", 2)[2].strip(), "",
        "The domain's threshold is in brackets; a profile's baseline and reference may come "
        "from another profile's runs (bracketed after the profile).", "", table, ""])
    out = Path(results) / OUT
    out.write_text(text)
    return out, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.stability_summary",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("results"))
    args = p.parse_args(argv)
    if not args.results.is_dir():
        print(f"reproduce.stability_summary: error: no results tree at {args.results}",
              file=sys.stderr)
        return 2
    try:
        out, table = write_summary(args.results)
    except SpecError as exc:
        print(f"reproduce.stability_summary: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
