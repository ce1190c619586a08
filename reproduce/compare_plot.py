"""The figure of ``reproduce.compare``: each seed's episodes to threshold, A beside B."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.plot_style import label, palette, plt, save, sns
from reproduce.table_format import fmt_num


def plot(rows: Sequence[Any], a: str, b: str, out: Path, name: str) -> list[Path]:
    """One panel per ``reproduce.compare.DomainResult``: seeds, censoring, medians."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    sns.set_theme(style="whitegrid", context="notebook")
    colors = palette([a, b])
    ncols = min(len(rows), 4) or 1
    nrows = max(1, math.ceil(len(rows) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    for ax, r in zip(axes.ravel(), rows, strict=False):
        for i, side in enumerate((r.a, r.b)):
            c, n = colors[side.algo], len(side.values)
            x = i + (np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(n))
            cr, ce = ~side.censored, side.censored
            ax.scatter(x[cr], side.values[cr], color=c, ec="black", lw=0.5, s=40, zorder=3)
            ax.scatter(x[ce], side.values[ce], fc="none", ec=c, lw=1.6, s=55, zorder=3)
            for xi, yi in zip(x[ce], side.values[ce], strict=True):
                ax.annotate("", xy=(xi, yi * 1.5), xytext=(xi, yi),
                            arrowprops={"arrowstyle": "->", "color": c, "lw": 1.3})
            m = side.median
            if not side.runs:
                ax.text(i, 0.5, "no finished runs", ha="center", fontsize=8, color="0.4",
                        transform=ax.get_xaxis_transform())
            elif not math.isnan(m.median):
                y = m.bound
                ax.hlines(y, i - 0.3, i + 0.3, color=c, lw=2.5,
                          ls="--" if math.isinf(m.median) else "-", zorder=2)
                if math.isinf(m.median):
                    ax.text(i + 0.32, y, f"> {fmt_num(y)}", va="center", fontsize=8, color=c)
        ys = np.concatenate([r.a.values, r.b.values])
        ys = ys[np.isfinite(ys) & (ys > 0)]
        if ys.size:
            ax.set_yscale("log")
            ax.set_ylim(ys.min() / 1.6, ys.max() * 2.2)
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_yticks([])
        ax.set_xlim(-0.6, 1.8)
        ax.set_xticks([0, 1], [label(a), label(b)], fontsize=8)
        ax.set_ylabel("episodes to threshold (1 = 1000 env steps)", fontsize=9)
        ax.set_title(f"{r.domain} (> {r.threshold:g}): A/B = {r.ratio_text}\n{r.verdict}",
                     fontsize=9.5)
    handles = [Line2D([], [], marker="o", color="0.4", mec="black", ls="none"),
               Line2D([], [], marker="o", mfc="none", mec="0.4", mew=1.6, ls="none"),
               Line2D([], [], color="0.4", lw=2.5), Line2D([], [], color="0.4", lw=2.5, ls="--")]
    labels = ["seed: first crossing", "censored seed: never crossed, at its budget (↑ true "
              "value above)", "median", "censored median (> value shown)"]
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Episodes to threshold: A = {label(a)} vs B = {label(b)} (ratio: 95% "
                 "bootstrap CI of median A / median B)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05 if nrows > 1 else 0.09, 1, 1))
    return save(fig, out, name)
