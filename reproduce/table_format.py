"""Formatting of Table 1: numbers, spreads, cells, markdown and plain-text tables, and the
header that says what made the table (profile, runs, versions, commits)."""

from __future__ import annotations

import math
import re
import subprocess
from typing import Any

import pandas as pd

from reproduce.algo_names import paper_name
from reproduce.results import Collection
from reproduce.spec import (
    PAPER_BUDGET_EPISODES,
    REPO_ROOT,
    TABLE1_ALGOS,
    RunSpec,
    SpecError,
    algos,
    domains,
    extra_rows_from,
    resolve_runs,
)

BOOTSTRAP_RESAMPLES = 9999


def fmt_num(x: float, small: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if small or abs(x) < 100:
        return f"{x:,.1f}"
    return f"{x:,.0f}"


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


def fmt_episodes(x: float, bound: float | None = None) -> str:
    """Episodes to threshold: "> bound" for a censored median (inf), "∞" for an unbounded
    CI end, "-" for none (the table's and ``reproduce.compare``'s cells)."""
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return f"> {fmt_num(bound)}" if bound is not None and math.isfinite(bound) else "∞"
    return fmt_num(x)


def table1_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table frame that are Table 1's cells (its three columns, seven domains)."""
    return df[df.table1_column & df.domain.isin(domains())]


def _crossing_cell(med: float, bound: float, lo: float, hi: float, kind: str) -> str:
    """The censored median of the crossings with its spread."""
    if math.isnan(med):
        return "-"
    if kind in ("single seed", "") or (lo == med == hi and kind != "min-max"):
        return fmt_episodes(med, bound)
    return (f"{fmt_episodes(med, bound)} [{fmt_episodes(lo)}–{fmt_episodes(hi)}]"
            + ("" if kind.startswith("bootstrap") else " (range)"))


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
    value = getattr(r, "seeds_crossed_diverged", "")
    diverged = [x for x in str(value).split(",") if x] if isinstance(value, str | int) else []
    if diverged:
        extra.append(f"crossed during a critic divergence: seed {', '.join(diverged)}")
    stopped = getattr(r, "seeds_stopped_nonfinite", "")
    stopped_seeds = [x for x in str(stopped).split(",") if x] if isinstance(stopped, str) else []
    if stopped_seeds:
        extra.append(f"training stopped on a non-finite value: seed {', '.join(stopped_seeds)}")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _budget_cell(r: pd.Series) -> str:
    if r.seeds_run == 0:
        return "-"
    lo, hi = r.budget_episodes_min, r.budget_episodes_max
    text = fmt_num(lo) if lo == hi else f"{fmt_num(lo)}–{fmt_num(hi)}"
    if r.stopped_early:
        text += f", {r.stopped_early} stopped early by {fmt_num(r.early_ended_episodes_max)}"
    return text


COMPACT_COLUMNS = ["Domain", "Threshold", "Algorithm", "Seeds crossed", "Episodes (ours)",
                   "Episodes (paper)", "Episodes verdict", "MaxReturn (ours)",
                   "MaxReturn (paper)", "Budget (episodes)"]


def _episodes_cells(r: pd.Series) -> tuple[str, str, str]:
    """(ours, paper, verdict) of the Episodes columns; a cell the paper never crossed and
    whose budget was capped below 30000 says so in all three."""
    if r.seeds_run == 0:
        ours = "missing"
    elif r.budget_capped and r.seeds_crossed == 0:
        ours = f"not crossed by {fmt_num(r.budget_episodes_max)}"
    elif r.seeds_crossed == 0:
        ours = fmt_episodes(r.episodes_median, r.episodes_bound)  # its spread says no more
    else:
        ours = _crossing_cell(r.episodes_median, r.episodes_bound, r.episodes_lo,
                              r.episodes_hi, r.episodes_interval)
    paper = _paper(r.paper_episodes, r.paper_episodes_qualifier) if r.table1_column else "-"
    if r.budget_capped and r.paper_episodes_qualifier == "N/A":
        paper += f" in {PAPER_BUDGET_EPISODES:,}"
    verdict = r.verdict_episodes or "-"
    if r.budget_capped and verdict == "not comparable":
        verdict += f": capped at {fmt_num(r.budget_episodes_max)}"
    return ours, paper, verdict


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        small = abs(r.threshold) < 20 if not math.isnan(r.threshold) else False  # Reacher
        missing = r.seeds_run == 0
        ours, paper, verdict = _episodes_cells(r)
        rows.append({
            "Domain": r.domain,
            "Threshold": f"{r.threshold:g}" if not math.isnan(r.threshold) else "-",
            "Algorithm": r.algorithm,
            "Seeds crossed": _seeds_cell(r),
            "Episodes (ours)": ours,
            "Episodes (paper)": paper,
            "Episodes verdict": verdict,
            "Env steps (ours)": "missing" if missing else fmt_episodes(r.env_steps_median,
                                                                    r.env_steps_bound),
            "Real episodes (ours)": "missing" if missing else fmt_episodes(
                r.real_episodes_median, r.real_episodes_bound),
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


# ---------------------------------------------------------------------- header, notes

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


def machines_line(cfgs: list[dict[str, Any]]) -> str:
    """The CPUs the runs ran on (``config.json``'s ``machines``), with the number of runs
    that predate the record."""
    cpus = [m.get("cpu") for c in cfgs for m in c.get("machines", [])]
    older = sum(not c.get("machines") for c in cfgs)
    text = _distinct(cpus) if cpus else "not recorded"
    if cpus and older:
        text += f"; not recorded by {older} older run(s)"
    return f"- **Machines**: {text}. Round-off can differ between CPUs (README, Determinism)."


def provenance(coll: Collection, profile: str) -> tuple[list[str], list[str]]:
    """(other profile names recorded in spec.json by runs of this profile's tree that resolve
    to the same spec under ``profile``, runs of its tree whose spec does not)."""
    same: set[str] = set()
    differ: list[str] = []
    for r in coll.runs:
        recorded = r.recorded_profile
        if r.profile != profile or recorded in (None, profile):
            continue
        try:
            mine = resolve_runs(profile, [r.domain], [r.algo], 1, first=r.seed)[0]
            ok = RunSpec.from_dict(r.spec or {}).identity() == mine.identity()
        except (SpecError, TypeError, KeyError, IndexError):
            ok = False
        if ok:
            same.add(str(recorded))
        else:
            differ.append(f"{r.domain}/{r.algo}/seed{r.seed} (spec.json: profile {recorded})")
    return sorted(same), differ


def header(coll: Collection, profile: str, table1_grid: bool = True) -> list[str]:
    """The table's preamble: what the numbers mean and where they came from. A profile that
    runs none of Table 1's columns (``table1_grid`` false) is titled by its own name."""
    cfgs = [r.config or {} for r in coll.runs]
    versions = [c.get("versions", {}) for c in cfgs]
    ddpg = [c.get("config", {}) for c in cfgs if c.get("config", {}).get("algo") == "ddpg"]
    early = _distinct([re.sub(r"crossing of -?[\d.]+ \(\w+\)",  # one rule, not one per domain
                              "crossing of the domain's threshold",
                              (r.done or {}).get("early_stop") or "none (full budget)")
                       for r in coll.runs])
    seeds = sorted({r.seed for r in coll.runs})
    commits = _distinct([c.get("git_commit") for c in cfgs])
    hp = algos()["ddpg"]
    eval_steps = _distinct([c.get("eval_steps") for c in ddpg]) if ddpg else hp["eval_steps"]
    epoch = _distinct([c.get("batch_size") for c in ddpg]) if ddpg else hp["batch_size"]
    own = sum(r.profile == profile for r in coll.runs)
    same, differ = provenance(coll, profile)
    runs = f"profile `{profile}` ({own} runs in `{profile}/runs`"
    if same:
        runs += (f"; spec.json of some of them names {', '.join(f'`{p}`' for p in same)}: "
                 f"made under that profile, whose rules give the identical spec under "
                 f"`{profile}`")
    if differ:
        runs += f"; NOT the spec `{profile}` asks for: {', '.join(differ)}"
    runs += ")"
    extra = [f"`{p}` ({sum(r.profile == p for r in coll.runs)} runs)"
             for p in extra_rows_from(profile)]
    if extra:
        runs += ("; extra rows (algorithms outside Table 1's columns) from profile(s) "
                 + ", ".join(extra))
    return [
        ("# Table 1 of Q-Prop (Gu et al., ICLR 2017), reproduced" if table1_grid else
         f"# Profile `{profile}`: its cells, by Table 1's rules (Q-Prop, Gu et al., ICLR 2017)"),
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
        "within the first 30000 episodes; median over every seed, a seed that never crossed "
        "censored where it ended and counted as +inf, so the median reads \"> x\" when half or "
        "more never crossed (x: the median with them at their ends) and a CI end reads ∞ when "
        "censoring reaches it (as `reproduce.compare`). **MaxReturn**: the best return within "
        "the first 30000 episodes, median over seeds.",
        "- **Spread**: [bootstrap 95% CI of the median] (scipy.stats.bootstrap, percentile, "
        f"{BOOTSTRAP_RESAMPLES} resamples) with >= 3 seeds; [min–max] (range) with 2.",
        "- **Returns**: TR-c-Q-Prop and TRPO report the mean return of their own stochastic "
        "training batch; **DDPG reports the noise-free evaluation return** (deterministic "
        f"actor, {eval_steps} env steps of evaluation after every epoch of {epoch} env steps), "
        "as the authors did.",
        f"- **Runs**: {runs}; seeds "
        f"{', '.join(map(str, seeds)) if seeds else 'none'}; budgets per row (last column; the "
        f"paper's is 30000 episodes = 30M env steps; a cell the paper never crossed may be "
        f"capped lower, and then says so). Early stop rule: {early}.",
        "- **Verdicts**: Episodes *better* = fewer episodes than the paper beyond our spread "
        "(censored seeds included, so a split cell is decided only when its spread is); "
        "MaxReturn *better* = higher. *within* = the paper's number lies in our spread. "
        "*not comparable* says why below.",
        f"- **Code**: runs from git commit {commits}; table written at {git_head()}.",
        machines_line(cfgs),
        "",
    ]


VERDICTS = ["better", "within", "worse", "not comparable", "missing"]


def tally(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1's cells (its three columns, its seven domains) counted by episodes verdict,
    per algorithm and in all."""
    cells = table1_cells(df)
    t = pd.crosstab(cells.algorithm, pd.Categorical(cells.verdict_episodes, VERDICTS),
                    dropna=False)
    t = t.reindex([paper_name(a) for a in TABLE1_ALGOS]).fillna(0).astype(int)
    t.loc["all"] = t.sum()
    return t


def notes(df: pd.DataFrame, coll: Collection, table1_grid: bool = True) -> list[str]:
    """What follows the table: the verdicts counted over Table 1's cells (when the table has
    its grid), the reason for each verdict, and the missing, skipped and unfinished runs."""
    out: list[str] = []
    if table1_grid:
        t = tally(df)
        out += ["", "## Episodes verdicts, counted", "",
                "| Algorithm | " + " | ".join(t.columns) + " |",
                "|---" * (len(t.columns) + 1) + "|"]
        out += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
                for name, row in t.iterrows()]
    out += ["", "## Why each verdict", ""]
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
