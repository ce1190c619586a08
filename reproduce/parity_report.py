"""The report of ``reproduce.parity``: ``<results>/parity.md`` and its figures, from the
finished runs whose settings still match their row (the others are listed, not counted): a
header with the versions, commits and rules, then per domain a table of the chain's rows and
sb3 (steps to each milestone, return near each N) and the figure.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qprop_tf.rundir import DONE
from reproduce.parity_chain import (
    SB3,
    SB3_LABEL,
    Run,
    chain_names,
    cumulative_sets,
    last_cumulative_row,
    set_value,
)
from reproduce.parity_curves import (
    WINDOW,
    Curve,
    kilo,
    load_curve,
    milestone_cell,
    return_near,
    spread_cell,
    steps_to,
)
from reproduce.parity_plot import GRID_STEPS, plot_domain
from reproduce.runner import read_json
from reproduce.table import git_head, markdown_table


def _same(have: Any, want: Any) -> bool:
    numbers = (int, float)
    if isinstance(have, numbers) and isinstance(want, numbers) and not isinstance(want, bool):
        return float(have) == float(want)
    return have is not None and set_value(have) == set_value(want)


def stale(cfg: dict[str, Any], run: Run, steps: int) -> str | None:
    """Why a finished run does not match what its row asks for now (None if it does)."""
    conf = read_json(run.out / "config.json") or {}
    if run.row == SB3:
        have, want = conf, {"env": cfg["domains"][run.domain]["env_id"], "steps": steps}
    else:
        have = conf.get("config", {})
        want = {**cumulative_sets(cfg)[run.row], "max_steps": steps}
    diffs = [f"{k}={have.get(k)!r} (wants {set_value(v)})" for k, v in want.items()
             if not _same(have.get(k), v)]
    return "; ".join(diffs) or None


def collect(cfg: dict[str, Any], runs: list[Run], steps: int
            ) -> tuple[dict[str, list[Curve]], list[str]]:
    """The finished runs' curves by row (in the order of ``runs``), and why others are out."""
    curves: dict[str, list[Curve]] = {r.row: [] for r in runs}
    left_out: list[str] = []
    for run in runs:
        curve = load_curve(run.out)
        why = stale(cfg, run, steps) if curve is not None else None
        if curve is not None and why is None:
            curves[run.row].append(curve)
        elif why is not None:
            left_out.append(f"{run.name} finished with other settings: {why} (delete it to "
                            "re-run it)")
        else:
            left_out.append(f"{run.name} {'unfinished' if run.out.exists() else 'not started'}")
    return curves, left_out


def domain_table(cfg: dict[str, Any], runs: list[Run], curves: dict[str, list[Curve]],
                 steps: int) -> pd.DataFrame:
    """One line per row: seeds finished, steps to each milestone, return near each N."""
    labels = {row["name"]: row["label"] for row in cfg["chain"]}
    chain = chain_names(cfg)
    table = []
    for row, cs in curves.items():
        single = row != SB3 and cfg["chain"][chain.index(row)].get("single", False)
        number = "–" if row == SB3 else ("alone" if single else str(chain.index(row) + 1))
        line = {"#": number, "Row": f"`{row}`",
                "Change": SB3_LABEL if row == SB3 else labels[row],
                "Seeds finished": f"{len(cs)}/{sum(r.row == row for r in runs)}"}
        for m in cfg["milestones"]:
            line[f"steps to return > {m:g}"] = milestone_cell([steps_to(c, m) for c in cs])
        for n in (n for n in cfg["at_steps"] if n <= steps):
            line[f"return near {kilo(n)}"] = spread_cell([return_near(c, n) for c in cs])
        table.append(line)
    return pd.DataFrame(table)


def distinct_versions(configs: list[dict[str, Any]]) -> str:
    found: dict[str, set[str]] = {}
    for conf in configs:
        for k, v in conf.get("versions", {}).items():
            found.setdefault(k, set()).add(str(v))
    return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in found.items()) or "no finished runs"


def header(cfg: dict[str, Any], runs: list[Run], steps: int, seeds: int,
           command: str) -> list[str]:
    done = [r for r in runs if (r.out / DONE).is_file()]
    ours = [read_json(r.out / "config.json") or {} for r in done if r.row != SB3]
    sb3 = [read_json(r.out / "config.json") or {} for r in done if r.row == SB3]
    call = next((c["call"] for c in sb3 if "call" in c), None)
    commits = sorted({str(c.get("git_commit")) for c in ours if c.get("git_commit")})
    base = " ".join(f"--set {k}={set_value(v)}" for k, v in cfg["base"].get("set", {}).items())
    rerun = command.replace(" --report-only", "")
    return [
        "# Learning parity: our TRPO against sb3-contrib's TRPO", "",
        f"- **Regenerate**: `{rerun}` (runs what is not finished, then writes this; `make "
        f"parity` does so for the whole config); the report alone: `{rerun} --report-only`.",
        f"- **Written** {datetime.now().astimezone().isoformat(timespec='seconds')} at git "
        f"commit {git_head()}; our runs from commit(s) {', '.join(commits) or 'unknown'}.",
        f"- **Runs**: {steps:,} env steps, seeds 0..{seeds - 1}, config "
        "reproduce/configs/parity.toml. Ours: `python -m qprop_tf train --algo "
        f"{cfg['base']['algo']} {base}` plus the row's changes, cumulative over the chain.",
        f"- **Versions**, ours: {distinct_versions(ours)}; sb3: {distinct_versions(sb3)}.",
        "- **sb3's call**: " + (f"`TRPO(\"MlpPolicy\", RecordEpisodeStatistics(gym.make(env)), "
                                f"{', '.join(f'{k}={v}' for k, v in call.items())})`"
                                if call else "no finished sb3 run yet."),
        "- **Return** of a batch: the mean undiscounted return of the episodes that ended in it "
        "(both implementations); batches in which no episode ended are skipped.",
        "- **Steps to return > m**: env steps of the first batch with return > m; median over "
        "seeds [min–max] and how many crossed. A seed that never crossed is censored at its "
        "last batch and counts as +infinity, so the median reads \"> X\" once half or more "
        "never crossed.",
        f"- **Return near N**: per seed the mean return of the batches with N - {WINDOW:,} < "
        "env steps <= N; median over seeds [min–max].", ""]


def write_report(cfg: dict[str, Any], runs: list[Run], results: Path, steps: int, seeds: int,
                 command: str) -> Path:
    """``<results>/parity.md`` and a figure per domain, from the finished runs."""
    results, chain = Path(results), chain_names(cfg)
    md = header(cfg, runs, steps, seeds, command)
    for domain in dict.fromkeys(r.domain for r in runs):
        mine = sorted((r for r in runs if r.domain == domain),
                      key=lambda r: (r.row == SB3, chain.index(r.row) if r.row != SB3 else 0))
        curves, left_out = collect(cfg, mine, steps)
        env_id = cfg["domains"][domain]["env_id"]
        ours = [r for r in curves if r != SB3]
        md += [f"## {domain} ({env_id})", "",
               "Each row adds one change to the one above; sb3-contrib's TRPO last."
               if ours == chain[:len(ours)] else
               "Rows are cumulative over the whole chain: a row has every change above it in "
               "the chain, also those of rows not shown here; sb3-contrib's TRPO last.",
               "", markdown_table(domain_table(cfg, mine, curves, steps)), ""]
        if plot_domain(domain, env_id, curves, chain, results / "figures",
                       last_cumulative_row(cfg)):
            md += [f"![{domain}: return against env steps](figures/parity_{domain}.png)", "",
                   f"*Return against env steps on {domain}: median over the finished seeds "
                   f"(line) and the 25–75% band, each seed's curve interpolated onto a grid of "
                   f"{GRID_STEPS:,} env steps; chain rows from dark (released) to light, sb3 "
                   "in red.*", ""]
        if left_out:
            md += ["Not in the table: " + "; ".join(left_out) + ".", ""]
    results.mkdir(parents=True, exist_ok=True)
    path = results / "parity.md"
    path.write_text("\n".join(md).rstrip() + "\n")
    return path
