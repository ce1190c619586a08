"""Learning curves and Q-Prop diagnostics from a results tree.

    python -m reproduce.plot --results results [--profile table1]

Writes ``<results>/<profile>/figures/`` from the runs the profile's table reads (its own
tree, plus the extra rows of its ``extra_rows_from``):

- ``table1.png/.svg``: Table 1 at a glance (``reproduce.table_plot``): each seed's
  episodes to threshold for the three algorithms, censored seeds as open markers, whether
  each crossing held over 25000 env steps (``seeds.md``'s "Held from"), the paper's
  crossing, and the verdict of each cell;
- ``curves_<Domain>.png/.svg``: return against the paper's episodes (1000 env steps), mean
  over seeds with a 95% band (percentile bootstrap of the mean over seeds, ``mean_ci``),
  the threshold, and the paper's crossing
  point per algorithm (a star on the threshold line; an arrow at the edge when it lies
  beyond our runs), and, when ``<results>/reference_returns.csv`` exists
  (``python -m reproduce.reference_returns``), grey dotted lines at what a zero action and
  uniform random actions earn;
- ``curves_all.png/.svg``: the seven domains in one grid, Table 1's three algorithms only
  (the extra rows are in ``curves_<Domain>``);
- ``diagnostics_<Domain>.png/.svg`` for Q-Prop runs: variance of the learning signal before
  and after the control variate, fraction of eta = 1, corr(A_hat, A_bar), critic loss;
- ``fig2a`` ... ``fig3b``: the paper's figure groups (configs/hyperparams.toml [figures]),
  when at least two of their algorithms have runs, one of them beyond Table 1's three.

The control-variate oracle's figures are not a profile's: ``python -m reproduce.plot_oracle``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from qprop_tf.progress import COLUMNS as C
from reproduce.algo_names import paper_name, untagged
from reproduce.plot_diagnostics import plot_diagnostics
from reproduce.plot_style import (
    algo_order,
    dashes,
    domains_env,
    grid_of,
    label,
    legend_handles,
    mean_ci,
    palette,
    plt,
    resample,
    save,
    sns,
)
from reproduce.reference_returns import load_reference
from reproduce.results import Collection, Run, load_runs
from reproduce.spec import (
    TABLE1_ALGOS,
    SpecError,
    domains,
    figures,
    paper_crossing,
    profile_dir,
    threshold,
)
from reproduce.table import build_table
from reproduce.table_plot import plot_table1

DEFAULT_PROFILE = "table1"


def draw_unfinished(ax: plt.Axes, runs: list[Run], colors: dict) -> float:
    """Each unfinished run's progress so far (a campaign's ``inflight/``): a thin dotted line
    in its algorithm's colour, ``s<seed>…`` at its end; never in the mean or the table.
    Returns the furthest episode drawn (0 without runs)."""
    end = 0.0
    for r in sorted(runs, key=lambda r: (r.algo, r.seed)):
        x = r.progress[C.paper_episodes].to_numpy(float)
        y = pd.to_numeric(r.progress[r.metric], errors="coerce").to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            continue
        ax.plot(x[ok], y[ok], color=colors[r.algo], lw=1.2, ls=":", zorder=3)
        ax.annotate(f"s{r.seed}…", (x[ok][-1], y[ok][-1]), xytext=(2, 0),
                    textcoords="offset points", fontsize=7, color=colors[r.algo], va="center")
        end = max(end, float(x[ok][-1]))
    return end


def draw_reference(ax: plt.Axes, domain: str, refs: pd.DataFrame | None) -> pd.DataFrame:
    """What policies that learn nothing earn (:mod:`reproduce.reference_returns`): a grey
    dotted line per policy (drawn before the limits are set, so they stay in view). Returns
    the domain's rows, lowest first, for :func:`label_reference`."""
    if refs is None:
        return pd.DataFrame(columns=["policy", "mean"])
    rows = refs[refs["domain"] == domain].sort_values("mean")
    for r in rows.itertuples():
        ax.axhline(r.mean, color="0.55", ls=":", lw=1, zorder=1)
    return rows


def label_reference(ax: plt.Axes, rows: pd.DataFrame, thresh: float, notes: int) -> None:
    """Label the reference lines at the right edge, where learning curves are high (the lowest
    line's label below it, the others' above), or at the left edge when the right is taken by
    the ``notes`` "paper crosses at" notes under the threshold line (12 + 11 points each)."""
    to_pt = 72.0 / ax.figure.dpi
    thresh_px = ax.transData.transform((0.0, thresh))[1]
    for i, r in enumerate(rows.itertuples()):
        below_pt = (thresh_px - ax.transData.transform((0.0, r.mean))[1]) * to_pt
        left = notes > 0 and -6 < below_pt < 12 + 11 * notes + 6
        value = f"{r.mean:,.0f}" if abs(r.mean) >= 10 else f"{r.mean:.1f}"
        ax.annotate(f"{r.policy}: {value}", xy=(0.01 if left else 0.99, r.mean),
                    xycoords=ax.get_yaxis_transform(), xytext=(0, -3 if i == 0 else 3),
                    textcoords="offset points", fontsize=7, color="0.4",
                    ha="left" if left else "right", va="top" if i == 0 else "bottom")


def curves_panel(ax: plt.Axes, domain: str, runs: list[Run], colors: dict, legend: bool,
                 title: str | None = None, unfinished: list[Run] | None = None,
                 refs: pd.DataFrame | None = None) -> None:
    thresh = threshold(domain)
    unfinished = unfinished or []
    ax.set_title(title or f"{domain} ({domains_env(domain)})", fontsize=11)
    ax.set_xlabel("episodes (1 = 1000 env steps)")
    ax.set_ylabel("average return")
    ax.axhline(thresh, color="0.35", ls="--", lw=1)
    ref_rows = draw_reference(ax, domain, refs)
    if not runs and not unfinished:
        ax.text(0.5, 0.75, "no runs", ha="center", va="center", transform=ax.transAxes,
                color="0.5")
        label_reference(ax, ref_rows, thresh, 0)
        return
    present = algo_order({r.algo for r in runs})
    xmin, xmax = 0.0, draw_unfinished(ax, unfinished, colors)
    if runs:
        frames = []
        grid = grid_of(runs)
        for algo in present:
            sel = [r for r in runs if r.algo == algo]
            metric = sel[0].metric
            frames.append(resample(sel, metric, grid))
        data = pd.concat(frames, ignore_index=True)
        data["label"] = data["algo"].map(label)
        styled = {"style": "label", "style_order": [label(a) for a in present],
                  "dashes": {label(a): dashes(a) for a in present}} if any(
            "@" in a for a in present) else {}  # tagged rows: dash-dot, their algo's colour
        sns.lineplot(data=data, x=C.paper_episodes, y="value", hue="label",
                     hue_order=[label(a) for a in present],
                     palette={label(a): colors[a] for a in present}, estimator="mean",
                     errorbar=mean_ci, ax=ax, legend=False, lw=1.5, **styled)
        for algo in present:  # a run of one iteration has no line: show its point(s)
            pts = data[data["algo"] == algo]
            if pts[C.paper_episodes].nunique() == 1:
                ax.errorbar(pts[C.paper_episodes].iloc[0], pts["value"].mean(),
                            yerr=[[pts["value"].mean() - pts["value"].min()],
                                  [pts["value"].max() - pts["value"].mean()]],
                            fmt="o", color=colors[algo], capsize=3, ms=5)
        xmin, xmax = min(0.0, float(grid[0])), max(xmax, float(grid[-1]))
    present = algo_order({r.algo for r in runs} | {r.algo for r in unfinished})
    ax.set_xlim(left=xmin, right=xmax * 1.02 if xmax > 0 else 1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # 5-digit episode counts stay apart
    ylo, yhi = ax.get_ylim()
    ax.set_ylim(min(ylo, thresh - 0.1 * abs(thresh) - 1), max(yhi, thresh + 0.1 * abs(thresh) + 1))
    beyond = 0
    for algo in dict.fromkeys(untagged(a) for a in present):  # a tagged row: its own
        cross = paper_crossing(domain, algo)
        if cross is None:
            continue
        color = colors[algo]
        if cross <= xmax * 1.02:
            ax.plot([cross], [thresh], marker="*", ms=13, color=color, mec="black", mew=0.6,
                    zorder=5, ls="none")
        else:  # beyond our runs: say where, at the right edge under the threshold line
            ax.annotate(f"paper {paper_name(algo)} crosses at {cross:,.0f} →",
                        xy=(0.99, thresh), xycoords=ax.get_yaxis_transform(),
                        xytext=(0, -12 - 11 * beyond), textcoords="offset points",
                        ha="right", va="center", fontsize=7.5, color=color,
                        fontweight="bold", bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                                 "ec": "none", "alpha": 0.8})
            beyond += 1
    label_reference(ax, ref_rows, thresh, beyond)
    ax.grid(alpha=0.3)
    if any(r.metric == C.eval_return for r in [*runs, *unfinished]):
        ax.set_ylabel("average return (DDPG: noise-free eval)")
    if legend:
        handles, labels = legend_handles(colors, present, bool(unfinished))
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)


def plot_curves(coll: Collection, out: Path, inflight: list[Run] | None = None,
                refs: pd.DataFrame | None = None) -> list[Path]:
    """``curves_<Domain>`` and ``curves_all``; ``inflight``: unfinished runs drawn dotted
    (:func:`draw_unfinished`); ``refs``: reference returns (:func:`draw_reference`)."""
    written: list[Path] = []
    colors = palette([r.algo for r in coll.runs])
    doms = list(domains())
    by_domain = {d: [r for r in coll.runs if r.domain == d] for d in doms}
    going = {d: [r for r in inflight or [] if r.domain == d] for d in doms}
    for d in doms:
        if not by_domain[d] and not going[d]:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.8))
        curves_panel(ax, d, by_domain[d], colors, legend=True, unfinished=going[d], refs=refs)
        fig.suptitle("Learning curves: mean over seeds, 95% band; star = paper's crossing",
                     fontsize=9, y=0.995, color="0.3")
        written += save(fig, out, f"curves_{d}")
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    flat = axes.ravel()
    main = [r for r in [*coll.runs, *(inflight or [])] if r.algo in TABLE1_ALGOS]
    for ax, d in zip(flat, doms, strict=False):
        curves_panel(ax, d, [r for r in by_domain[d] if r.algo in TABLE1_ALGOS], colors,
                     legend=False, unfinished=[r for r in going[d] if r.algo in TABLE1_ALGOS],
                     refs=refs)
    present = algo_order({r.algo for r in main})
    legend_ax = flat[-1]
    legend_ax.axis("off")
    handles, labels = legend_handles(colors, present, bool(inflight))
    legend_ax.legend(handles, labels, loc="center", fontsize=11, frameon=False,
                     title="Gymnasium v5; mean over seeds, 95% band")
    fig.suptitle("Q-Prop reproduction: learning curves on the seven MuJoCo domains of Table 1",
                 fontsize=14)
    fig.tight_layout()
    written += save(fig, out, "curves_all")
    return written


def plot_figure_groups(coll: Collection, out: Path) -> list[Path]:
    written: list[Path] = []
    colors = palette([r.algo for r in coll.runs])
    for name, group in figures().items():
        runs = [r for r in coll.runs if r.domain == group["domain"] and r.algo in group["algos"]]
        present = {r.algo for r in runs}
        if len(present) < 2 or present <= set(TABLE1_ALGOS):  # nothing beyond curves_<Domain>
            continue
        fig, ax = plt.subplots(figsize=(9, 4.8))
        curves_panel(ax, group["domain"], runs, colors, legend=True,
                     title=f"{group['title']} ({group['domain']})")
        written += save(fig, out, name)
    return written


def make_plots(results: str | Path, profile: str = DEFAULT_PROFILE,
               include_unfinished: bool = False) -> list[Path]:
    """The profile's figures, in ``<results>/<profile>/figures/``."""
    results = Path(results)
    sns.set_theme(style="whitegrid", context="notebook")
    table, coll = build_table(results, profile, include_unfinished=include_unfinished)
    for p in coll.problems:
        print(f"reproduce.plot: skipped {p.path}: {p.message}", file=sys.stderr)
    out = profile_dir(results, profile) / "figures"
    if not coll.runs:
        print(f"reproduce.plot: no finished runs under {out.parent / 'runs'}", file=sys.stderr)
        return []
    return (plot_table1(table, coll, out)
            + plot_curves(coll, out, inflight_runs(results, profile, coll), load_reference(results))
            + plot_diagnostics(coll, out) + plot_figure_groups(coll, out))


def inflight_runs(results: Path, profile: str, finished: Collection) -> list[Run]:
    """The profile's unfinished campaign runs (``<profile>/inflight/``, written by
    ``make campaign-collect``), less any that has finished since."""
    done = {(r.domain, r.algo, r.seed) for r in finished.runs}
    going = load_runs(results, profile, include_unfinished=True, tree="inflight")
    for p in going.problems:
        print(f"reproduce.plot: skipped {p.path}: {p.message}", file=sys.stderr)
    return [r for r in going.runs if (r.domain, r.algo, r.seed) not in done]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="whose runs to plot (default: %(default)s)")
    p.add_argument("--include-unfinished", action="store_true",
                   help="also plot runs without DONE (in progress)")
    p.add_argument("--allow-empty", action="store_true",
                   help="exit 0, not 1, when the profile has no finished run to plot yet "
                        "(campaign-collect: a profile whose first runs are in flight)")
    args = p.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"reproduce.plot: error: no results directory {args.results!r}", file=sys.stderr)
        return 2
    try:
        written = make_plots(args.results, args.profile, args.include_unfinished)
    except SpecError as exc:
        print(f"reproduce.plot: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0 if written or args.allow_empty else 1


if __name__ == "__main__":
    raise SystemExit(main())
