"""Table 1 at a glance: one panel per domain, each seed's episodes to threshold for the three
algorithms of the paper's Table 1, beside the paper's crossing and our verdict.

Drawn by ``make plot`` (``reproduce.plot``) as ``<profile>/figures/table1.png`` from the same
numbers as ``reproduce.table``: a filled dot per seed that crossed, an open one with an up
arrow per seed that never did (censored at its budget), the censored median (dashed, "> x",
when half or more never crossed), the paper's crossing as a black diamond (open, with an up
arrow, at 30000 where the paper never crossed), and the cell's episodes verdict under its
column. Over each crossing, whether it *held* (``seeds.md``'s "Held from": the mean over the
last 25000 env steps above the threshold, ``reproduce.run_stats.held_crossing``): a thin line
up to a tick where it held later than it crossed, a white cross where it never held though
the run went on 25000 steps, a white dot where the run stopped too soon to tell.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.compare_plot import (
    SEED_LABELS,
    draw_seeds,
    log_episodes_axis,
    seed_handles,
    seed_x,
)
from reproduce.compare_stats import median_ci
from reproduce.plot_style import palette, plt, save, sns
from reproduce.results import Collection
from reproduce.run_stats import run_stats
from reproduce.spec import PAPER_BUDGET_EPISODES, TABLE1_ALGOS, domains
from reproduce.table_format import table1_cells
from reproduce.table_seeds import held_status, seed_row

VERDICT_COLORS = {"better": "tab:green", "within": "tab:blue", "worse": "tab:red"}
NAME = "table1"
STEP = 1.25  # between columns: room for a median's "> x" label before the next diamond
HELD_APART = 1.15  # a crossing that held within 15% of it: no line (it would hide the dot)


def seed_crossings(coll: Collection, domain: str, algo: str, thresh: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(episodes, censored) per seed: the first crossing, or where a run that never crossed
    was censored (as ``reproduce.table``)."""
    stats = [run_stats(r, thresh) for r in coll.select(domain, algo)]
    values = [s.cross_episodes if s.crossed else s.censor_episodes for s in stats]
    return np.asarray(values, dtype=float), np.asarray([not s.crossed for s in stats], bool)


def seed_holds(coll: Collection, domain: str, algo: str) -> tuple[np.ndarray, list[str]]:
    """Per seed, in ``seed_crossings``' order: where its crossing held (paper episodes, NaN
    when it did not) and ``table_seeds.held_status`` ("held", "no", "undecided", "-")."""
    rows = [pd.Series(seed_row(r)) for r in coll.select(domain, algo)]
    return (np.asarray([r["held_episodes"] for r in rows], dtype=float),
            [held_status(r) for r in rows])


def draw_holds(ax: plt.Axes, i: float, crossings: np.ndarray, held: np.ndarray,
               status: list[str]) -> None:
    """Over column ``i``'s seeds (``draw_seeds``): a line from the crossing up to a tick
    where it held, if more than 15% later; a white cross if it never held; a white dot if
    undecided. A plain dot held at its crossing (or within 15%)."""
    for x, y, h, s in zip(seed_x(i, len(crossings)), crossings, held, status, strict=True):
        if s == "held" and h > y * HELD_APART:
            ax.vlines(x, y, h, color="0.2", lw=0.8, zorder=2.5)
            ax.scatter([x], [h], marker="_", color="0.1", s=70, lw=1.6, zorder=3.5)
        elif s == "no":
            ax.scatter([x], [y], marker="x", color="white", s=20, lw=1.6, zorder=4)
        elif s == "undecided":
            ax.scatter([x], [y], marker="o", color="white", s=9, lw=0, zorder=4)


def draw_paper(ax: plt.Axes, i: float, value: float, qual: str) -> float:
    """The paper's crossing at column ``i``: a diamond at its value, or an open one with an
    up arrow at 30000 episodes where it never crossed (N/A, >x). Returns the y drawn at."""
    never = qual in ("N/A", ">") or math.isnan(value)
    y = float(PAPER_BUDGET_EPISODES) if never else value
    x = i - 0.4  # left of the median line, clear of its "> x" label
    ax.scatter([x], [y], marker="D", s=42, zorder=4, ec="black", lw=1.2,
               fc="none" if never else "black")
    if never:
        ax.annotate("", xy=(x, y * 1.5), xytext=(x, y),
                    arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.1})
    return y


def panel_domains(df: pd.DataFrame) -> list[str]:
    """The domains drawn: those where at least one Table 1 cell has a finished run (a
    profile's own domains), in Table 1's order."""
    cells = table1_cells(df)
    ran = cells.groupby("domain").seeds_run.sum()
    return [d for d in domains() if ran.get(d, 0) > 0]


def plot_table1(df: pd.DataFrame, coll: Collection, out: Path, name: str = NAME
                ) -> list[Path]:
    """The figure of ``reproduce.table.build_table``'s Table 1 cells (``df``) and their runs
    (``coll``); nothing when no Table 1 cell has a run."""
    cells = table1_cells(df)
    doms = panel_domains(df)
    if not doms:
        return []
    sns.set_theme(style="whitegrid", context="notebook")
    colors = palette(list(TABLE1_ALGOS))
    ncols = min(len(doms), 4)
    nrows = math.ceil(len(doms) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols, 4.6 * nrows), squeeze=False)
    for ax in axes.ravel()[len(doms):]:
        ax.axis("off")
    for ax, domain in zip(axes.ravel(), doms, strict=False):
        ys: list[float] = []
        for i, algo in enumerate(TABLE1_ALGOS):
            row = cells[(cells.domain == domain) & (cells.algo == algo)]
            if row.empty:
                continue
            r = row.iloc[0]
            values, censored = seed_crossings(coll, domain, algo, r.threshold)
            x = i * STEP
            draw_seeds(ax, x, values, censored, median_ci(values, censored), colors[algo])
            held, status = seed_holds(coll, domain, algo)
            draw_holds(ax, x, values, held, status)
            ys += [*values, *held[~np.isnan(held)],
                   draw_paper(ax, x, r.paper_episodes, r.paper_episodes_qualifier)]
            verdict = r.verdict_episodes or "-"
            ax.text(x, -0.13, verdict.replace("not comparable", "not\ncomparable"),
                    transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8,
                    color=VERDICT_COLORS.get(verdict, "0.35"), fontweight="bold")
        log_episodes_axis(ax, np.asarray(ys, dtype=float))
        ax.set_xlim(-0.65, (len(TABLE1_ALGOS) - 1) * STEP + 0.8)
        ax.set_xticks([i * STEP for i in range(len(TABLE1_ALGOS))],
                      [_short(a, cells) for a in TABLE1_ALGOS], fontsize=8)
        ax.set_ylabel("episodes to threshold (1 = 1000 env steps)", fontsize=9)
        ax.set_title(f"{domain} (> {cells[cells.domain == domain].threshold.iloc[0]:g})",
                     fontsize=10)
    from matplotlib.lines import Line2D

    dot = seed_handles()[0]
    handles = [*seed_handles(),
               Line2D([], [], marker="D", color="black", ls="none"),
               Line2D([], [], marker="D", mfc="none", mec="black", ls="none"),
               Line2D([], [], marker="_", color="0.1", ms=10, mew=1.6, ls="none"),
               (dot, Line2D([], [], marker="x", color="white", mew=1.2, ms=4, ls="none")),
               (dot, Line2D([], [], marker="o", color="white", mew=0, ms=2.5, ls="none"))]
    labels = [*SEED_LABELS, "paper's crossing (Table 1)",
              "paper: never crossed within 30000 (N/A, >30000)",
              "held: 25k-step mean above from here (a plain dot: held there, ±15%)",
              "× on a seed: never held over 25k env steps, though it ran on",
              "white dot on a seed: stopped before 25k more steps (undecided)"]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
    fig.suptitle("Table 1 at a glance: episodes to threshold per seed, beside the paper's "
                 "(verdict under each column; the table has the reasons)", fontsize=11)
    fig.tight_layout(rect=(0, 0.065, 1, 1))
    return save(fig, out, name)


def _short(algo: str, cells: pd.DataFrame) -> str:
    names = cells.loc[cells.algo == algo, "algorithm"]
    return str(names.iloc[0]) if not names.empty else algo
