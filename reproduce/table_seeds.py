"""Table 1 seed by seed: one row per finished run of a profile's table (its own runs and its
extra rows), written by ``make table`` beside ``table.md`` as ``seeds.md`` and ``seeds.csv``.

Each row says what the table's cell hides: where the run crossed the threshold (paper
episodes, the table's rule: the first row above it, no smoothing) or that it never did,
where it ended and why (early stop, its budget, a non-finite value), its max return and the
mean of its last 10 rows (a peak is not a plateau), whether it crossed during a critic
divergence, and what it cost and where it ran (CPU-hours and peak memory from
``progress.csv``'s ``cpu_time`` and ``max_rss_mb``, the CPU and the commit from ``config.json``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from reproduce.algo_names import paper_name
from reproduce.cost_calibration import config_cpus
from reproduce.results import Collection, Run
from reproduce.run_stats import HOLD_STEPS, held_crossing, run_stats
from reproduce.spec import EPISODE_STEPS, TABLE1_ALGOS, domains, threshold
from reproduce.table_format import fmt_num, markdown_table

LAST_ROWS = 10  # the "last" return: the mean of this many final rows of the run's metric


def ended_by(run: Run) -> str:
    """Why the run ended: "early stop", "budget", "non-finite" or "" (not recorded)."""
    if run.nonfinite:
        return "non-finite"
    stopped = (run.done or {}).get("stopped")
    return {"early": "early stop", "budget": "budget"}.get(str(stopped), str(stopped or ""))


def cpu_hours(run: Run) -> float:
    """The run's own process CPU time in hours (NaN for runs older than ``cpu_time``)."""
    col = run.progress.get("cpu_time")
    if col is None or col.dropna().empty:
        return math.nan
    return float(col.dropna().iloc[-1]) / 3600.0


def peak_rss_mb(run: Run) -> float:
    """The run's peak resident memory in MB (``max_rss_mb``; NaN for older runs)."""
    col = run.progress.get("max_rss_mb")
    return math.nan if col is None or col.dropna().empty else float(col.max())


def held_episodes(run: Run, thresh: float) -> float:
    """:func:`held_crossing` of the run's metric, in paper episodes: each row weighted by the
    episodes its return averages (``batch_episodes``; DDPG: ``eval_episodes``; 1 where the
    column is missing)."""
    df = run.progress.dropna(subset=[run.metric])
    col = "eval_episodes" if run.metric == "eval_return" else "batch_episodes"
    weights = df[col].fillna(1.0) if col in df else pd.Series(1.0, index=df.index)
    steps = held_crossing(df["env_steps"].to_numpy(), df[run.metric].to_numpy(),
                          weights.to_numpy(), thresh)
    return steps / EPISODE_STEPS


def seed_row(run: Run) -> dict[str, Any]:
    """One run's row (numbers, not text): see the module's docstring."""
    thresh = threshold(run.domain) if run.domain in domains() else math.nan
    st = run_stats(run, thresh)
    metric = run.progress[run.metric].dropna()
    return {
        "domain": run.domain, "algo": run.algo, "algorithm": paper_name(run.algo),
        "seed": run.seed, "threshold": thresh, "crossed": st.crossed,
        "cross_episodes": st.cross_episodes, "cross_env_steps": st.cross_env_steps,
        "crossed_during_divergence": st.crossed_diverged,
        "held_episodes": held_episodes(run, thresh),
        "end_episodes": st.end_episodes, "budget_episodes": st.budget_episodes,
        "ended_by": ended_by(run), "max_return": st.max_return,
        "last_return": float(metric.tail(LAST_ROWS).mean()) if not metric.empty else math.nan,
        "cpu_hours": cpu_hours(run), "peak_rss_mb": peak_rss_mb(run),
        "cpu": config_cpus(run.config),
        "commit": str((run.config or {}).get("git_commit", ""))[:7],
        "profile": run.profile, "path": str(run.path),
    }


def seed_frame(coll: Collection) -> pd.DataFrame:
    """Every run of the collection: Table 1's domains in their order, Table 1's columns
    (TR-c-Q-Prop, TRPO, DDPG) before the extra rows, then by seed."""
    order = {d: i for i, d in enumerate(domains())}
    column = {a: i for i, a in enumerate(TABLE1_ALGOS)}  # Table 1's columns, then the rest
    df = pd.DataFrame([seed_row(r) for r in coll.runs])
    if df.empty:
        return df
    keys = pd.DataFrame({"d": df["domain"].map(lambda d: order.get(d, 99)),
                         "a": df["algo"].map(lambda a: column.get(a, 99))})
    df = df.join(keys).sort_values(["d", "domain", "a", "algorithm", "seed"])
    return df.drop(columns=["d", "a"]).reset_index(drop=True)


def _crossing(r: pd.Series) -> str:
    if not r["crossed"]:
        return f"not crossed in {fmt_num(r['end_episodes'])}"
    return fmt_num(r["cross_episodes"]) + (" (during a critic divergence)"
                                            if r["crossed_during_divergence"] else "")


def held_status(r: pd.Series) -> str:
    """"held", "no" (crossed, and ran HOLD_STEPS on without holding), "undecided" (crossed,
    stopped sooner) or "-" (never crossed)."""
    if not math.isnan(r["held_episodes"]):
        return "held"
    if not r["crossed"]:
        return "-"
    after = (r["end_episodes"] - r["cross_episodes"]) * EPISODE_STEPS
    return "no" if after >= HOLD_STEPS else "undecided"


def _held(r: pd.Series) -> str:
    status = held_status(r)
    return fmt_num(r["held_episodes"]) if status == "held" else status


def display(df: pd.DataFrame) -> pd.DataFrame:
    small = df["threshold"].abs() < 20  # the table's rule (display_frame): Reacher
    return pd.DataFrame({
        "Domain": df["domain"], "Threshold": [fmt_num(x, s) for x, s in zip(
            df["threshold"], small, strict=True)],
        "Algorithm": df["algorithm"], "Seed": df["seed"],
        "Crossed at (episodes)": [_crossing(r) for _, r in df.iterrows()],
        f"Held from (episodes, {HOLD_STEPS // 1000}k-step mean)": [
            _held(r) for _, r in df.iterrows()],
        "Ended at (episodes)": df["end_episodes"].map(fmt_num),
        "Budget (episodes)": df["budget_episodes"].map(fmt_num),
        "Ended by": df["ended_by"],
        "Max return": [fmt_num(x, s) for x, s in zip(df["max_return"], small, strict=True)],
        f"Last {LAST_ROWS} rows' mean": [fmt_num(x, s) for x, s in zip(
            df["last_return"], small, strict=True)],
        "CPU-h": df["cpu_hours"].map(lambda x: "-" if math.isnan(x) else f"{x:.2f}"),
        "Peak RSS (MB)": df["peak_rss_mb"].map(lambda x: "-" if math.isnan(x) else f"{x:,.0f}"),
        "CPU": df["cpu"], "Commit": df["commit"].replace("", "-"),
    })


def write_seeds(coll: Collection, out: Path, profile: str) -> pd.DataFrame:
    """Write ``<out>/seeds.md`` and ``seeds.csv``; the frame."""
    df = seed_frame(coll)
    if not df.empty:  # where the run lies under the results root (out's parent)
        df["path"] = [os.path.relpath(x, out.parent) for x in df["path"]]
    df.to_csv(out / "seeds.csv", index=False)
    lines = [f"# Table 1 seed by seed (profile `{profile}`)", "",
             f"Every finished run that `table.md` counts, one row each (`make table` writes this "
             "file; `seeds.csv` has the numbers unrounded, with each run's directory "
             "under the results root). "
             "*Crossed at*: the first row whose return is above the threshold, in paper "
             "episodes (1000 env steps), as the table counts it; a run that never crossed "
             "is censored where it ended. *Held from*: where the mean return of the last "
             f"{HOLD_STEPS:,} env steps (Table 1's largest batch; each row weighted by its "
             "episodes) first exceeded the threshold: a crossing that one lucky batch of a "
             "few episodes makes does not hold; *no*: it crossed and ran at least that many "
             "steps on without holding; *undecided*: it stopped sooner (the early stop ends "
             "a run 10% past its crossing). Not the paper's metric: the table does not use "
             "it. "
             "*Ended by*: its early stop (10% past its crossing), "
             "its budget or a non-finite value. *Max return*: within the first 30000 "
             f"episodes (DDPG: evaluation returns). *Last {LAST_ROWS} rows' mean*: where it "
             "ended up. *CPU-h*: the run's own process CPU time (runs older than `cpu_time` "
             "in progress.csv: -). *Peak RSS*: the run's largest resident memory "
             "(`max_rss_mb`). *CPU*: every CPU the run ran on (`config.json`'s `machines`, "
             "joined by +; unrecorded for runs older than that list).", ""]
    lines.append(markdown_table(display(df)) if not df.empty else "No finished runs yet.")
    if not df.empty:
        lines += ["", f"Did Table 1's crossings hold over {HOLD_STEPS:,} env steps? "
                  "(its three columns' runs that crossed, by the column *Held from*)", "",
                  markdown_table(held_summary(df))]
    (out / "seeds.md").write_text("\n".join(lines) + "\n")
    return df


def held_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per Table 1 column: its runs that crossed, and how many of those held, did not, or
    stopped too soon to tell (:func:`held_status`)."""
    crossed = df[df["algo"].isin(TABLE1_ALGOS) & df["crossed"]]
    held = crossed.apply(held_status, axis=1) if len(crossed) else pd.Series(dtype=str)
    rows = []
    for algo in TABLE1_ALGOS:
        h = held[crossed["algo"] == algo]
        rows.append({"Algorithm": paper_name(algo), "crossed": len(h),
                     "held": int((h == "held").sum()),
                     "did not hold": int((h == "no").sum()),
                     "undecided": int((h == "undecided").sum())})
    return pd.DataFrame(rows)
