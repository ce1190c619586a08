"""Learning parity with sb3-contrib's TRPO, and the ablation chain between them (issue 11).

    python -m reproduce.parity [--results results] [--domains Hopper,Walker]
        [--rows released,mlp] [--seeds N] [--steps N] [--workers 2]
        [--peer-python .venv-peers/bin/python] [--no-sb3] [--report-only] [--dry-run]

reproduce/configs/parity.toml holds the chain: row k runs ``python -m qprop_tf train`` with
base.set and the ``set`` tables of chain rows 1..k merged in order, so each row adds one
change to the row above, from ours as released to sb3-contrib's settings. sb3 runs
reproduce/sb3_trpo.py under the peer interpreter (``make parity`` builds .venv-peers).
``--rows`` keeps only those rows of each domain's list (a row keeps every change above it).

Runs land in ``<results>/parity/<Domain>/<row>/seed<k>/`` (sb3: ``<Domain>/sb3/seed<k>/``),
their output appended to ``log.txt``. Runs with DONE are skipped, so calling again runs only
what is missing (ours resume from their last checkpoint, sb3 starts over). ``--workers`` runs
go at once, seed-major (every row's seed 0, then seed 1, ...). A failed run is reported with
the end of its log and the others go on; the exit code is then 1. The report,
``<results>/parity.md`` and ``<results>/figures/parity_<Domain>.png/.svg``, is written at the
end from the finished runs (also with ``--report-only``); unfinished runs are listed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import DONE
from reproduce.runner import LOG, read_json
from reproduce.spec import CONFIG_DIR, REPO_ROOT, REPRO_DIR
from reproduce.table import git_head, markdown_table

PARITY_TOML = CONFIG_DIR / "parity.toml"
SB3_SCRIPT = REPRO_DIR / "sb3_trpo.py"
DEFAULT_PEER_PYTHON = ".venv-peers/bin/python"
SB3 = "sb3"
SB3_LABEL = "sb3-contrib's TRPO (reproduce/sb3_trpo.py; its call above)"
GRID_STEPS = 5000  # the figures' common x grid
WINDOW = 25000  # "return near N": mean over the batches with N - WINDOW < env_steps <= N
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


class ParityError(ValueError):
    """A bad domain or row name, or no peer interpreter: reported before anything runs."""


# ---------------------------------------------------------------------- the plan

def load_config(path: Path = PARITY_TOML) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def chain_names(cfg: dict[str, Any]) -> list[str]:
    return [row["name"] for row in cfg["chain"]]


def cumulative_sets(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Row name -> its overrides: base.set, then the ``set`` of chain rows 1..k in order.

    A row with ``single = true`` is one factor alone: base.set plus its own ``set`` only,
    and it does not carry into the rows after it.
    """
    base = dict(cfg["base"].get("set", {}))
    merged = dict(base)
    out: dict[str, dict[str, Any]] = {}
    for row in cfg["chain"]:
        if row.get("single", False):
            out[row["name"]] = {**base, **row.get("set", {})}
            continue
        merged = {**merged, **row.get("set", {})}
        out[row["name"]] = merged
    return out


def last_cumulative_row(cfg: dict[str, Any]) -> str:
    """The end of the chain proper (single-factor rows aside)."""
    return [row["name"] for row in cfg["chain"] if not row.get("single", False)][-1]


def _known(kind: str, names: list[str], valid: list[str]) -> list[str]:
    bad = [n for n in names if n not in valid]
    if bad:
        raise ParityError(f"unknown {kind} {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")
    return names


def select(cfg: dict[str, Any], domains: list[str] | None = None,
           rows: list[str] | None = None) -> dict[str, list[str]]:
    """Domain -> its chain rows to run, in chain order (the config's ``rows`` cut to ``rows``)."""
    chain = chain_names(cfg)
    wanted = _known("row", rows or chain, chain)
    out: dict[str, list[str]] = {}
    for d in _known("domain", domains or list(cfg["domains"]), list(cfg["domains"])):
        listed = cfg["domains"][d].get("rows", "all")
        listed = chain if listed == "all" else _known(f"row in [domains.{d}]", list(listed), chain)
        out[d] = [r for r in chain if r in listed and r in wanted]
    return out


def set_value(value: Any) -> str:
    """A config value as ``--set`` takes it: true/false, comma-joined sequences."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def run_dir(results: Path, domain: str, row: str, seed: int) -> Path:
    return Path(results) / "parity" / domain / row / f"seed{seed}"


def ours_command(cfg: dict[str, Any], domain: str, row: str, seed: int, steps: int,
                 out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "qprop_tf", "train", "--algo", cfg["base"]["algo"],
           "--env", domain, "--seed", str(seed), "--max-steps", str(steps), "--no-progress",
           "--out", str(out)]
    for key, value in cumulative_sets(cfg)[row].items():
        cmd += ["--set", f"{key}={set_value(value)}"]
    return cmd


def sb3_command(peer_python: str | Path, env_id: str, seed: int, steps: int,
                out: Path) -> list[str]:
    return [str(peer_python), "-I", str(SB3_SCRIPT), "--env", env_id, "--seed", str(seed),
            "--steps", str(steps), "--out", str(out)]


@dataclass(frozen=True)
class Run:
    domain: str
    row: str  # a chain row's name, or SB3
    seed: int
    out: Path
    cmd: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.row}/seed{self.seed}"


def plan_runs(cfg: dict[str, Any], selection: dict[str, list[str]], results: Path, seeds: int,
              steps: int, peer_python: str | Path, sb3: bool = True) -> list[Run]:
    """Every run of the selection, seed-major: all rows of seed 0, then of seed 1, ..."""
    results = Path(results).absolute()
    runs: list[Run] = []
    for seed in range(seeds):
        for domain, rows in selection.items():
            for row in rows:
                out = run_dir(results, domain, row, seed)
                runs.append(Run(domain, row, seed, out,
                                tuple(ours_command(cfg, domain, row, seed, steps, out))))
            if sb3:
                out = run_dir(results, domain, SB3, seed)
                env_id = cfg["domains"][domain]["env_id"]
                runs.append(Run(domain, SB3, seed, out,
                                tuple(sb3_command(peer_python, env_id, seed, steps, out))))
    return runs


# ---------------------------------------------------------------------- running

def execute(run: Run) -> int:
    """One run as a subprocess, its stdout and stderr appended to ``<run dir>/log.txt``."""
    try:
        run.out.mkdir(parents=True, exist_ok=True)
        with open(run.out / LOG, "a") as log:
            log.write(f"\n=== {datetime.now().isoformat(timespec='seconds')} "
                      f"{shlex.join(run.cmd)}\n")
            log.flush()
            return subprocess.run(run.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                  env={**os.environ, **CHILD_ENV}, check=False).returncode
    except OSError as exc:  # the run directory is not writable, or the command cannot start
        with contextlib.suppress(OSError), open(run.out / LOG, "a") as log:
            log.write(f"reproduce.parity: {exc}\n")
        return 127


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.is_file() else "(no log)"
    return "\n".join("        " + line for line in text.rstrip().splitlines()[-lines:])


def run_all(runs: list[Run], workers: int, show_progress: bool = True) -> list[Run]:
    """Run ``runs`` in their order, ``workers`` at a time; return the failed ones."""
    from tqdm import tqdm

    failed: list[Run] = []
    bar = tqdm(total=len(runs), unit="run", desc="parity", dynamic_ncols=True,
               disable=not show_progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute, run): run for run in runs}
        try:
            for fut in as_completed(futures):
                run, code = futures[fut], fut.result()
                if code == 0:
                    bar.write(f"done    {run.name}")
                else:
                    failed.append(run)
                    bar.write(f"FAILED  {run.name} (exit {code}); the end of "
                              f"{run.out / LOG}:\n{log_tail(run.out / LOG)}")
                bar.update()
                bar.set_postfix(failed=len(failed))
        except KeyboardInterrupt:  # the children got the Ctrl-C too; wait for them
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            bar.close()
    return failed


# ---------------------------------------------------------------------- numbers

@dataclass
class Curve:
    steps: np.ndarray  # env_steps of the batches with a finite average_return
    returns: np.ndarray
    end: float  # env_steps of the last batch, whatever its return


def load_curve(out: Path) -> Curve | None:
    """A finished run's return curve; None without DONE or without rows."""
    path = out / "progress.csv"
    if not (out / DONE).is_file() or not path.is_file():
        return None
    df = pd.read_csv(path, usecols=[C.env_steps, C.average_return])
    x = pd.to_numeric(df[C.env_steps], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[C.average_return], errors="coerce").to_numpy(float)
    if not np.isfinite(x).any():
        return None
    ok = np.isfinite(x) & np.isfinite(y)
    return Curve(x[ok], y[ok], float(np.nanmax(x)))


def steps_to(curve: Curve, milestone: float) -> tuple[float, bool]:
    """(env_steps of the first batch with return > milestone, True), else (last steps, False)."""
    above = np.flatnonzero(curve.returns > milestone)
    return (float(curve.steps[above[0]]), True) if above.size else (curve.end, False)


def return_near(curve: Curve, n: float) -> float:
    """Mean return of the batches with n - WINDOW < env_steps <= n; NaN if there are none."""
    sel = (curve.steps > n - WINDOW) & (curve.steps <= n)
    return float(curve.returns[sel].mean()) if sel.any() else math.nan


def kilo(x: float) -> str:
    return f"{x / 1000:,.0f}k"


def milestone_cell(hits: list[tuple[float, bool]]) -> str:
    """Median [min–max] over seeds, a seed that never crossed counting as +infinity."""
    if not hits:
        return "-"
    vals = np.array([s if crossed else math.inf for s, crossed in hits])
    censored = [s for s, crossed in hits if not crossed]
    k = len(hits) - len(censored)
    med = float(np.median(vals))
    text = f"> {kilo(min(censored))}" if math.isinf(med) else kilo(med)
    if len(hits) > 1 and k > 0:
        hi = f">{kilo(max(censored))}" if censored else kilo(float(vals.max()))
        text += f" [{kilo(float(vals.min()))}–{hi}]"
    return f"{text}, {k}/{len(hits)} crossed"


def spread_cell(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "-"
    med = f"{float(np.median(vals)):,.0f}"
    return med if len(vals) == 1 else f"{med} [{min(vals):,.0f}–{max(vals):,.0f}]"


# ---------------------------------------------------------------------- report

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


def row_colors(chain: list[str]) -> dict[str, Any]:
    """A sequential palette along the chain (the progression reads), sb3 in red."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    colors: dict[str, Any] = {r: cmap(x) for r, x in zip(chain, np.linspace(0, 0.85, len(chain)),
                                                          strict=True)}
    return {**colors, SB3: "#d62728"}


def binned(curves: dict[str, list[Curve]]) -> pd.DataFrame:
    """Each seed's curve interpolated onto the GRID_STEPS grid, inside its own range."""
    frames = []
    end = max((c.end for cs in curves.values() for c in cs), default=0.0)
    grid = np.arange(GRID_STEPS, end + GRID_STEPS, GRID_STEPS, dtype=float)
    for row, cs in curves.items():
        for c in cs:
            if c.steps.size == 0:
                continue
            inside = grid[(grid >= c.steps[0]) & (grid <= c.steps[-1])]
            frames.append(pd.DataFrame({"env_steps": inside, "row": row,
                                        "return": np.interp(inside, c.steps, c.returns)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["env_steps", "row", "return"])


def plot_domain(domain: str, env_id: str, curves: dict[str, list[Curve]], chain: list[str],
                out: Path, last: str | None = None) -> list[Path]:
    """Return against env steps: (a) released, the chain's last cumulative row ``last``, sb3;
    (b) every row (when > 3)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from reproduce.plot import save

    data = binned(curves)
    present = [r for r in curves if r in set(data["row"])]
    if not present:
        return []
    ours = [r for r in present if r != SB3]
    ends = [r for r in ours if r in (chain[0], last)] or ours[:1] + ours[-1:]
    first = list(dict.fromkeys(ends + [r for r in present if r == SB3]))
    panels = [(f"(a) {', '.join(first)}", first), ("(b) every row", present)]
    panels = panels[:1] if len(present) <= len(first) else panels
    colors = row_colors(chain)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 5), sharey=True,
                             squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        sns.lineplot(data=data[data["row"].isin(rows)], x="env_steps", y="return", hue="row",
                     hue_order=rows, palette={r: colors[r] for r in rows}, estimator="median",
                     errorbar=("pi", 50), ax=ax, legend=False, lw=1.6)
        ax.set_title(title if len(panels) > 1 else "", fontsize=11)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: kilo(x)))
        ax.set_xlabel("env steps")
        ax.set_ylabel("return (mean of the episodes ended in a batch)")
    names = [SB3_LABEL.split(" (")[0] if r == SB3 else f"{chain.index(r) + 1}. {r}"
             for r in present]
    fig.legend([Line2D([], [], color=colors[r], lw=2.5) for r in present], names,
               loc="lower center", ncol=min(5, len(present)), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Parity on {domain} ({env_id}): median over seeds, 25–75% band", fontsize=12)
    fig.tight_layout(rect=(0, 0.07 * math.ceil(len(present) / 5), 1, 1))
    return save(fig, out, f"parity_{domain}")


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


# ---------------------------------------------------------------------- main

def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="results directory")
    p.add_argument("--domains", default=None, help="comma list (default: every [domains.*])")
    p.add_argument("--rows", default=None, help="comma list of chain rows (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: config)")
    p.add_argument("--steps", type=lambda s: int(float(s)), default=None,
                   help="env steps per run (default: config)")
    p.add_argument("--workers", type=int, default=2, help="runs at once")
    p.add_argument("--peer-python", default=str(REPO_ROOT / DEFAULT_PEER_PYTHON),
                   help=f"interpreter with sb3-contrib (default {DEFAULT_PEER_PYTHON})")
    p.add_argument("--no-sb3", action="store_true", help="do not run sb3 (still reported)")
    p.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    cfg = load_config()
    steps = int(cfg["steps"]) if args.steps is None else args.steps
    seeds = int(cfg["seeds"]) if args.seeds is None else args.seeds
    results = Path(args.results)
    try:
        selection = select(cfg, _csv(args.domains), _csv(args.rows))
        if seeds < 1 or steps < 1:
            raise ParityError(f"--seeds and --steps must be >= 1, got {seeds} and {steps}")
        peer = Path(args.peer_python).absolute()  # not resolve(): a venv's python is a link
        runs = plan_runs(cfg, selection, results, seeds, steps, peer)
        todo = [r for r in runs if not (r.out / DONE).is_file()
                and not (args.no_sb3 and r.row == SB3)]
        if (not args.report_only and not args.dry_run and any(r.row == SB3 for r in todo)
                and not (peer.is_file() and os.access(peer, os.X_OK))):
            raise ParityError(f"no peer interpreter at {peer}: `make parity` builds .venv-peers "
                              "(torch, sb3-contrib; requirements-peers.txt), or use --no-sb3")
    except ParityError as exc:
        print(f"reproduce.parity: error: {exc}", file=sys.stderr)
        return 2
    finished = sum((r.out / DONE).is_file() for r in runs)
    print(f"{len(runs)} runs: {finished} finished, {len(todo)} to run"
          + (", sb3 not run (--no-sb3)" if args.no_sb3 else ""))
    if args.dry_run:
        for run in todo:
            print(shlex.join(run.cmd))
        return 0
    failed: list[Run] = []
    if not args.report_only and todo:
        try:
            failed = run_all(todo, max(1, args.workers), not args.no_progress)
        except KeyboardInterrupt:
            print("reproduce.parity: interrupted; run the same command to continue (finished "
                  "runs are skipped, ours resume from their checkpoint)", file=sys.stderr)
            return 130
    command = shlex.join(["python", "-m", "reproduce.parity", *argv])
    print(f"wrote {write_report(cfg, runs, results, steps, seeds, command)}")
    if failed:
        print(f"reproduce.parity: {len(failed)} run(s) failed: "
              f"{', '.join(r.name for r in failed)} (logs: <run dir>/{LOG})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
