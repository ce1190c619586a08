"""The figure of ``reproduce.compare``: each seed's episodes to threshold, A beside B; and the
drawing it shares with ``reproduce.table_plot`` (seeds, censoring, medians, the log axis)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.compare_stats import MedianCI
from reproduce.plot_style import label, palette, plt, save, sns
from reproduce.table_format import fmt_num

SEED_LABELS = ["seed: first crossing", "censored seed: never crossed, at its budget (↑ true "
               "value above)", "median", "censored median (> value shown)"]


def seed_x(i: float, n: int) -> np.ndarray:
    """Where column ``i``'s ``n`` seeds are drawn, side by side."""
    return i + (np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(n))


def draw_seeds(ax: plt.Axes, i: float, values: np.ndarray, censored: np.ndarray,
               median: MedianCI, color: Any) -> None:
    """Column ``i``: a filled dot per seed that crossed, an open one with an up arrow per
    censored seed, and the median (dashed with "> x" when censored)."""
    n = len(values)
    x = seed_x(i, n)
    cr, ce = ~censored, censored
    ax.scatter(x[cr], values[cr], color=color, ec="black", lw=0.5, s=40, zorder=3)
    ax.scatter(x[ce], values[ce], fc="none", ec=color, lw=1.6, s=55, zorder=3)
    for xi, yi in zip(x[ce], values[ce], strict=True):
        ax.annotate("", xy=(xi, yi * 1.5), xytext=(xi, yi),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.3})
    if not n:
        ax.text(i, 0.5, "no finished runs", ha="center", fontsize=8, color="0.4",
                transform=ax.get_xaxis_transform())
    elif not math.isnan(median.median):
        y = median.bound
        ax.hlines(y, i - 0.3, i + 0.3, color=color, lw=2.5,
                  ls="--" if math.isinf(median.median) else "-", zorder=2)
        if math.isinf(median.median):
            ax.text(i + 0.32, y, f"> {fmt_num(y)}", va="center", fontsize=8, color=color)


def log_episodes_axis(ax: plt.Axes, ys: np.ndarray) -> None:
    """A log y axis around ``ys`` with plain tick labels (1, 2, 5 per decade)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ys = ys[np.isfinite(ys) & (ys > 0)]
    if not ys.size:
        ax.set_yticks([])
        return
    ax.set_yscale("log")
    ax.set_ylim(ys.min() / 1.6, ys.max() * 2.2)
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def seed_handles() -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", color="0.4", mec="black", ls="none"),
            Line2D([], [], marker="o", mfc="none", mec="0.4", mew=1.6, ls="none"),
            Line2D([], [], color="0.4", lw=2.5), Line2D([], [], color="0.4", lw=2.5, ls="--")]


def plot(rows: Sequence[Any], a: str, b: str, out: Path, name: str) -> list[Path]:
    """One panel per ``reproduce.compare.DomainResult``: seeds, censoring, medians."""
    sns.set_theme(style="whitegrid", context="notebook")
    colors = palette([a, b])
    ncols = min(len(rows), 4) or 1
    nrows = max(1, math.ceil(len(rows) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    for ax, r in zip(axes.ravel(), rows, strict=False):
        for i, side in enumerate((r.a, r.b)):
            draw_seeds(ax, i, side.values, side.censored, side.median, colors[side.algo])
        log_episodes_axis(ax, np.concatenate([r.a.values, r.b.values]))
        ax.set_xlim(-0.6, 1.8)
        ax.set_xticks([0, 1], [label(a), label(b)], fontsize=8)
        ax.set_ylabel("episodes to threshold (1 = 1000 env steps)", fontsize=9)
        ax.set_title(f"{r.domain} (> {r.threshold:g}): A/B = {r.ratio_text}\n{r.verdict}",
                     fontsize=9.5)
    fig.legend(seed_handles(), SEED_LABELS, loc="lower center", ncol=2, fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Episodes to threshold: A = {label(a)} vs B = {label(b)} (ratio: 95% "
                 "bootstrap CI of median A / median B)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05 if nrows > 1 else 0.09, 1, 1))
    return save(fig, out, name)
