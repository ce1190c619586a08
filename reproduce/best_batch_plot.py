"""The figure of ``reproduce.best_batch``: episodes to threshold against batch size, one
domain a figure, one line per algorithm (its median per batch), every seed a point."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.plot_style import label, palette, plt, save, sns
from reproduce.spec import threshold


def plot_domain(domain: str, cells: list[Any], picks: dict[str, Any], held: Any | None,
                out: Path, name: str, status: str = "", term: dict[str, Any] | None = None
                ) -> list[Path]:
    """``cells``: best_batch.Cell of one domain; ``picks``: family -> chosen Cell;
    ``held``: best_batch_heldout.Heldout or None; ``status``: a line for the title (e.g.
    that the choice is provisional); ``term``: family -> compare.Side of its batch-1000 cell
    with the authors' terminal time limit (best_batch_truncation), drawn left of 1,000.
    Writes ``name``.png/.svg under ``out``."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    sns.set_theme(style="whitegrid", context="notebook")
    fams = list(dict.fromkeys(c.family for c in cells))
    colors = palette(fams)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ys: list[float] = []
    for k, fam in enumerate(fams):
        mine = [c for c in cells if c.family == fam]
        col = colors[fam]
        shift = 1.0 + 0.06 * (k - (len(fams) - 1) / 2)  # the families side by side
        xs, meds = [], []
        for c in mine:
            v, cens = c.side.values, c.side.censored
            n = v.size
            x = c.batch * shift * (np.exp(np.linspace(-0.05, 0.05, n)) if n > 1 else np.ones(n))
            ax.scatter(x[~cens], v[~cens], color=col, ec="black", lw=0.5, s=30, zorder=3)
            ax.scatter(x[cens], v[cens], fc="none", ec=col, lw=1.5, s=45, zorder=3)
            for xi, yi in zip(x[cens], v[cens], strict=True):
                ax.annotate("", xy=(xi, yi * 1.35), xytext=(xi, yi),
                            arrowprops={"arrowstyle": "->", "color": col, "lw": 1.2})
            ys += [float(y) for y in v if math.isfinite(y) and y > 0]
            if n:
                xs.append(c.batch * shift)
                meds.append(c.side.median.bound)  # the censored median's lower bound
                if math.isinf(c.median):
                    ax.text(c.batch * shift, c.side.median.bound, " >", color=col,
                            fontsize=9, va="center")
            if picks.get(fam) is c:
                ax.scatter([c.batch * shift], [c.side.median.bound], marker="*", s=220,
                           color=col, ec="black", lw=0.6, zorder=4)
        if xs:
            ax.plot(xs, meds, color=col, lw=2, label=label(fam), zorder=2)
    if held is not None:
        for k, side in enumerate((held.result.b, held.result.a)):  # TRPO, Q-Prop
            fam = "trpo" if k == 0 else "qprop-c"
            pick = picks.get(fam)
            if pick is None or not side.runs:
                continue
            x = np.full(side.values.size, pick.batch * 1.25)
            col, cens = colors.get(fam, "0.4"), side.censored
            ax.scatter(x[~cens], side.values[~cens], marker="D", s=22, color=col, alpha=0.6,
                       zorder=3)
            ax.scatter(x[cens], side.values[cens], marker="D", s=30, fc="none", ec=col,
                       lw=1.3, zorder=3)  # censored: hollow, true value above
            for xi, yi in zip(x[cens], side.values[cens], strict=True):
                ax.annotate("", xy=(xi, yi * 1.35), xytext=(xi, yi),
                            arrowprops={"arrowstyle": "->", "color": col, "lw": 1.0})
            ys += [float(y) for y in side.values if math.isfinite(y) and y > 0]
    for fam, side in (term or {}).items():
        if not side.runs:
            continue
        k = fams.index(fam) if fam in fams else 0
        x = np.full(side.values.size, 1000 / 1.3 * (1.0 + 0.06 * (k - (len(fams) - 1) / 2)))
        col = colors.get(fam, "0.4")
        cens = side.censored
        ax.scatter(x[~cens], side.values[~cens], marker="X", s=40, color=col, ec="black",
                   lw=0.4, alpha=0.8, zorder=3)
        ax.scatter(x[cens], side.values[cens], marker="X", s=40, fc="none", ec=col, lw=1.2,
                   zorder=3)
        ys += [float(y) for y in side.values if math.isfinite(y) and y > 0]
    ax.set_xscale("log")
    if ys:
        ax.set_yscale("log")
        ax.set_ylim(min(ys) / 1.6, max(ys) * 2.2)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    batches = sorted({c.batch for c in cells})
    ax.set_xticks(batches, [f"{b:,}" for b in batches])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(min(batches, default=1000) / (2.2 if term else 1.8),
                max(batches, default=25000) * 1.8)
    ax.set_xlabel("batch size (env steps per update)")
    ax.set_ylabel("episodes to threshold (1 = 1000 env steps)", fontsize=9)
    verdict = f"\nheld-out: {held.verdict} ({held.result.ratio_text})" if held else ""
    verdict += f"\n{status}" if status else ""
    ax.set_title(f"{domain} (> {threshold(domain):g}): best batch per algorithm{verdict}",
                 fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], marker="o", color="0.4", mec="black", ls="none"),
                Line2D([], [], marker="o", mfc="none", mec="0.4", mew=1.5, ls="none"),
                Line2D([], [], marker="*", color="0.4", mec="black", ms=12, ls="none"),
                Line2D([], [], marker="D", color="0.4", alpha=0.6, ls="none")]
    labels += ["seed 0-4: first crossing", "censored seed, at its budget (↑ true value above)",
               "chosen batch (median)", "held-out seed 5-9 (chosen batch; hollow: censored)"]
    if term:
        handles.append(Line2D([], [], marker="X", color="0.4", mec="black", ls="none"))
        labels.append("batch 1000, time limit terminal (authors'; hollow: censored)")
    ax.legend(handles, labels, fontsize=7.5, loc="best")
    fig.tight_layout()
    return save(fig, out, name)


def plot_verdicts(items: list[Any], pooled: float, out: Path, name: str = "best_batch_verdicts"
                  ) -> list[Path]:
    """One row per domain: the held-out ratio of medians Q-Prop / TRPO (log x) with its 95%
    bootstrap CI, the batches compared and the verdict; a CI end at 0 or infinity is drawn as
    an arrow to the axis' edge. ``items``: best_batch_heldout.Heldout; ``pooled``: the
    pooled one-sided p (NaN: not shown)."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.8 * max(1, len(items))))
    lo_edge, hi_edge = 1 / 12, 12.0
    for k, h in enumerate(items):
        r, y = h.result, len(items) - 1 - k
        lo = min(max(r.lo, lo_edge), hi_edge) if math.isfinite(r.lo) or r.lo == 0 else lo_edge
        hi = min(max(r.hi, lo_edge), hi_edge) if math.isfinite(r.hi) else hi_edge
        col = "tab:blue" if h.verdict == "Q-Prop faster" else (
            "tab:orange" if h.verdict == "TRPO faster" else "0.35")
        ax.plot([lo, hi], [y, y], color=col, lw=2.2, solid_capstyle="butt")
        for end, edge, beyond in ((r.lo, lo, lo_edge / 1.25), (r.hi, hi, hi_edge * 1.25)):
            if end <= lo_edge or end >= hi_edge or not math.isfinite(end):  # open-ended CI
                ax.annotate("", xy=(beyond, y), xytext=(edge, y),
                            arrowprops={"arrowstyle": "-|>", "color": col, "lw": 1.5})
        if math.isfinite(r.ratio) and r.ratio > 0:
            ax.scatter([min(max(r.ratio, lo_edge), hi_edge)], [y], s=70, color=col,
                       ec="black", lw=0.6, zorder=3)
        ax.text(1.03, y, f"{h.verdict}\n{r.a.algo} / {r.b.algo}\np = {h.p:.2g}",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(lo_edge / 1.35, hi_edge * 1.35)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ticks = [0.125, 0.25, 0.5, 1, 2, 4, 8]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(items)), [h.domain for h in reversed(items)])
    ax.set_xlabel("held-out ratio of median episodes, TR-c-Q-Prop / TRPO (95% bootstrap CI)\n"
                  "< 1: Q-Prop needs fewer episodes", fontsize=9)
    title = "Each algorithm at its own best batch: held-out seeds 5-9"
    if math.isfinite(pooled):
        title += f"\nall domains at once: one-sided p = {pooled:.2g} (Stouffer)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out, name)
