"""Learning curves and Q-Prop diagnostics from a results tree.

    python -m reproduce.plot --results results [--profile table1]

Writes ``<results>/<profile>/figures/`` from the runs the profile's table reads (its own
tree, plus the extra rows of its ``extra_rows_from``):

- ``curves_<Domain>.png/.svg``: return against the paper's episodes (1000 env steps), mean
  over seeds with a 95% band (percentile bootstrap of the mean over seeds, ``mean_ci``),
  the threshold, and the paper's crossing
  point per algorithm (a star on the threshold line; an arrow at the edge when it lies
  beyond our runs);
- ``curves_all.png/.svg``: the seven domains in one grid;
- ``diagnostics_<Domain>.png/.svg`` for Q-Prop runs: variance of the learning signal before
  and after the control variate, fraction of eta = 1, corr(A_hat, A_bar), critic loss;
- ``fig2a`` ... ``fig3b``: the paper's figure groups (configs/hyperparams.toml [figures]),
  when at least two of their algorithms have runs, one of them beyond Table 1's three.

The control-variate oracle's figures are not a profile's: ``python -m reproduce.plot_oracle``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from qprop_tf.divergence import diverged_stretches  # noqa: E402
from qprop_tf.progress import COLUMNS as C  # noqa: E402
from reproduce.algo_names import paper_name
from reproduce.results import Collection, Run, load_table_runs  # noqa: E402
from reproduce.spec import (  # noqa: E402
    EPISODE_STEPS,
    TABLE1_ALGOS,
    SpecError,
    algos,
    domains,
    figures,
    paper_crossing,
    profile_dir,
    threshold,
)

DEFAULT_PROFILE = "table1"

GRID_POINTS = 150
N_BOOT = 300
DIAGNOSTICS = (C.signal_var_before, C.signal_var_after, C.eta_one_fraction, C.corr_adv_abar,
               C.critic_loss)


def algo_order(names: set[str]) -> list[str]:
    known = [a for a in (*TABLE1_ALGOS, *algos()) if a in names]
    return list(dict.fromkeys(known)) + sorted(names - set(known))


def palette(names: list[str]) -> dict[str, tuple[float, float, float]]:
    """Stable colours: the same algorithm has the same colour in every figure."""
    every = algo_order(set(algos()) | set(names))
    colors = sns.color_palette("tab10", 10) + sns.color_palette("Set2", 8)
    return {a: colors[i % len(colors)] for i, a in enumerate(every)}


def label(algo: str) -> str:
    name = paper_name(algo)
    return name if name == algo else f"{name} ({algo})"


def mean_ci(x: pd.Series | np.ndarray, level: float = 95.0) -> tuple[float, float]:
    """The percentile-bootstrap ``level``% CI of the mean of ``x`` (the seeds at one point of
    a curve): ``N_BOOT`` resamples drawn at once with a fixed seed, so a figure redraws
    identically; seaborn's own ``("ci", 95)`` does the same one resample at a time, which
    was most of ``make plot``'s time."""
    v = np.asarray(x, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        m = float(v.mean()) if v.size else math.nan
        return m, m
    idx = np.random.default_rng(0).integers(0, v.size, size=(N_BOOT, v.size))
    lo, hi = np.percentile(v[idx].mean(axis=1), [(100 - level) / 2, (100 + level) / 2])
    return float(lo), float(hi)


def resample(runs: list[Run], column: str, grid: np.ndarray) -> pd.DataFrame:
    """Each run's ``column`` interpolated onto ``grid`` (paper episodes), NaN outside it."""
    frames = []
    for run in runs:
        df = run.progress
        if column not in df.columns:
            continue
        x = df[C.paper_episodes].to_numpy(float)
        y = pd.to_numeric(df[column], errors="coerce").to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() == 0:
            continue
        x, y = x[ok], y[ok]
        inside = (grid >= x[0]) & (grid <= x[-1])
        if inside.sum() < 2:  # too short for the grid: keep the run's own points
            xs, ys = x, y
        else:
            xs, ys = grid[inside], np.interp(grid[inside], x, y)
        frames.append(pd.DataFrame({C.paper_episodes: xs, "value": ys, "algo": run.algo,
                                    "seed": run.seed}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[C.paper_episodes, "value", "algo", "seed"])


def _grid(runs: list[Run]) -> np.ndarray:
    end = max(float(r.progress[C.paper_episodes].max()) for r in runs)
    start = min(float(r.progress[C.paper_episodes].min()) for r in runs)
    return np.linspace(start, end, GRID_POINTS)


def curves_panel(ax: plt.Axes, domain: str, runs: list[Run], colors: dict, legend: bool,
                 title: str | None = None) -> None:
    thresh = threshold(domain)
    ax.set_title(title or f"{domain} ({domains_env(domain)})", fontsize=11)
    ax.set_xlabel("episodes (1 = 1000 env steps)")
    ax.set_ylabel("average return")
    ax.axhline(thresh, color="0.35", ls="--", lw=1)
    if not runs:
        ax.text(0.5, 0.75, "no runs", ha="center", va="center", transform=ax.transAxes,
                color="0.5")
        return
    present = algo_order({r.algo for r in runs})
    frames = []
    grid = _grid(runs)
    for algo in present:
        sel = [r for r in runs if r.algo == algo]
        metric = sel[0].metric
        frames.append(resample(sel, metric, grid))
    data = pd.concat(frames, ignore_index=True)
    data["label"] = data["algo"].map(label)
    sns.lineplot(data=data, x=C.paper_episodes, y="value", hue="label",
                 hue_order=[label(a) for a in present],
                 palette={label(a): colors[a] for a in present}, estimator="mean",
                 errorbar=mean_ci, ax=ax, legend=False, lw=1.5)
    for algo in present:  # a run of one iteration has no line: show its point(s)
        pts = data[data["algo"] == algo]
        if pts[C.paper_episodes].nunique() == 1:
            ax.errorbar(pts[C.paper_episodes].iloc[0], pts["value"].mean(),
                        yerr=[[pts["value"].mean() - pts["value"].min()],
                              [pts["value"].max() - pts["value"].mean()]],
                        fmt="o", color=colors[algo], capsize=3, ms=5)
    xmax = float(grid[-1])
    ax.set_xlim(left=min(0.0, float(grid[0])), right=xmax * 1.02 if xmax > 0 else 1)
    ylo, yhi = ax.get_ylim()
    ax.set_ylim(min(ylo, thresh - 0.1 * abs(thresh) - 1), max(yhi, thresh + 0.1 * abs(thresh) + 1))
    beyond = 0
    for algo in present:
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
    ax.grid(alpha=0.3)
    if any(r.metric == C.eval_return for r in runs):
        ax.set_ylabel("average return (DDPG: noise-free eval)")
    if legend:
        handles, labels = _legend_handles(colors, present)
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)


def domains_env(domain: str) -> str:
    from qprop_tf.envs import DOMAINS

    return DOMAINS.get(domain, domain)


def _legend_handles(colors: dict, present: list[str]) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[a], lw=2) for a in present]
    labels = [label(a) for a in present]
    handles += [Line2D([], [], color="0.35", ls="--", lw=1),
                Line2D([], [], marker="*", color="0.5", mec="black", ms=12, ls="none")]
    labels += ["threshold", "paper's crossing point (colour = algorithm)"]
    return handles, labels


SVG_HASH_SALT = "qprop-tf"
"""Salt of the SVG element ids (matplotlib's default is a random uuid per file)."""


def save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.svg and close ``fig``; every figure of reproduce/ goes
    through here. Byte-stable: the same figure gives the same bytes, so re-plotting unchanged
    results leaves ``git status`` clean (the SVG has no date and salted, not random, ids;
    the PNG has no date)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(paths[0], dpi=150, bbox_inches="tight")
        fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return paths


def plot_curves(coll: Collection, out: Path) -> list[Path]:
    written: list[Path] = []
    colors = palette([r.algo for r in coll.runs])
    doms = list(domains())
    by_domain = {d: [r for r in coll.runs if r.domain == d] for d in doms}
    for d in doms:
        if not by_domain[d]:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.8))
        curves_panel(ax, d, by_domain[d], colors, legend=True)
        fig.suptitle("Learning curves: mean over seeds, 95% band; star = paper's crossing",
                     fontsize=9, y=0.995, color="0.3")
        written += save(fig, out, f"curves_{d}")
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    flat = axes.ravel()
    for ax, d in zip(flat, doms, strict=False):
        curves_panel(ax, d, by_domain[d], colors, legend=False)
    present = algo_order({r.algo for r in coll.runs})
    legend_ax = flat[-1]
    legend_ax.axis("off")
    handles, labels = _legend_handles(colors, present)
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


DIAG_PANELS: list[tuple[str, list[tuple[str, str]], str, bool]] = [
    # (title, [(column, line label)], y label, log y)
    ("Learning-signal variance, before / after the control variate",
     [(C.signal_var_before, "before: A_hat"), (C.signal_var_after, "after: A_hat - eta A_bar")],
     "variance", True),
    ("Variance ratio after / before (< 1: the critic helps)",
     [("__var_ratio__", "after / before")], "ratio", False),
    ("Fraction of samples with eta = 1", [(C.eta_one_fraction, "eta = 1")], "fraction", False),
    ("corr(A_hat, A_bar) per batch", [(C.corr_adv_abar, "corr")], "correlation", False),
    ("Scale: std of A_hat and of A_bar",
     [(C.advantage_std, "std A_hat (GAE)"), (C.abar_std, "std A_bar (Taylor)")], "std", True),
    ("Analytic term's share of the step (g_Q.d / g.d)",
     [(C.analytic_step_share, "share")], "share", False),
    ("Policy std (mean over action dims)", [(C.policy_std, "std")], "std", False),
    ("Critic TD loss", [(C.critic_loss, "loss")], "loss", True),
]


def _with_ratio(run: Run) -> Run:
    df = run.progress
    if {C.signal_var_before, C.signal_var_after} <= set(df.columns):
        df = df.assign(__var_ratio__=df[C.signal_var_after] / df[C.signal_var_before])
    return dataclasses.replace(run, progress=df)


def shade_divergence(axes: Any, runs: list[Run], colors: dict, caption: bool = True) -> int:
    """Shade every run's critic-divergence stretches (``qprop_tf.divergence``: TD loss
    > 100x its healthy median) in its algorithm's colour on every panel; the TD-loss panel
    (the last) names them. Returns the number of stretches."""
    spans = [(s.steps_from / EPISODE_STEPS, s.steps_to / EPISODE_STEPS, colors[r.algo],
              f"{r.algo} seed {r.seed}") for r in runs for s in diverged_stretches(r.progress)]
    for ax in axes:
        for x0, x1, color, _ in spans:
            ax.axvspan(x0, x1, color=color, alpha=0.15, lw=0)
    if spans and caption:
        names = sorted({who for *_, who in spans})
        axes[-1].text(0.01, 0.99, "shaded: critic diverged\n(" + "; ".join(names) + ")",
                      transform=axes[-1].transAxes, va="top", fontsize=8, color="0.25")
    return len(spans)


def plot_diagnostics(coll: Collection, out: Path) -> list[Path]:
    """Per domain, the control variate's behaviour over training (Q-Prop runs only)."""
    written: list[Path] = []
    colors = palette([r.algo for r in coll.runs])
    for d in domains():
        runs = [_with_ratio(r) for r in coll.runs if r.domain == d
                and set(DIAGNOSTICS[:4]) <= set(r.progress.columns)]
        if not runs:
            continue
        grid = _grid(runs)
        present = algo_order({r.algo for r in runs})
        pal = {label(a): colors[a] for a in present}
        order = [label(a) for a in present]
        fig, axes = plt.subplots(2, 4, figsize=(24, 9))
        for ax, (title, cols, ylabel, logy) in zip(axes.ravel(), DIAG_PANELS, strict=True):
            parts = []
            for col, which in cols:
                f = resample(runs, col, grid)
                f["which"] = which
                parts.append(f)
            data = pd.concat(parts, ignore_index=True)
            data["label"] = data["algo"].map(label)
            if logy:
                data = data[data["value"] > 0]
            if not data.empty:
                sns.lineplot(data=data, x=C.paper_episodes, y="value", hue="label",
                             hue_order=order, palette=pal,
                             style="which" if len(cols) > 1 else None,
                             errorbar=mean_ci, ax=ax,
                             legend=len(cols) > 1)
                if logy:
                    ax.set_yscale("log")
            else:
                ax.text(0.5, 0.5, "not logged by these runs", transform=ax.transAxes,
                        ha="center", color="0.4")
            if ax.get_legend() is not None:  # keep only the line-style entries
                handles, labels = ax.get_legend_handles_labels()
                keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
                        if lab in {w for _, w in cols}]
                ax.legend([h for h, _ in keep], [lab for _, lab in keep], fontsize=9,
                          loc="best")
            ax.set_title(title, fontsize=11)
            ax.set_ylabel(ylabel)
            ax.set_xlabel("episodes (1 = 1000 env steps)")
            ax.grid(alpha=0.3)
        shade_divergence(axes.ravel(), runs, colors)
        axes[0, 1].axhline(1.0, color="0.4", lw=0.8, ls="--")
        axes[0, 2].set_ylim(-0.02, 1.02)
        axes[0, 3].axhline(0, color="0.4", lw=0.8)
        for y in (0.0, 1.0):
            axes[1, 1].axhline(y, color="0.4", lw=0.8, ls=":")
        handles, labels = _legend_handles(colors, present)
        fig.legend(handles[:len(present)], labels[:len(present)], loc="lower center",
                   ncol=len(present), fontsize=11, frameon=False, bbox_to_anchor=(0.5, -0.01))
        fig.suptitle(f"Q-Prop diagnostics on {d} ({domains_env(d)}): mean over seeds, "
                     "95% band", fontsize=14)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        written += save(fig, out, f"diagnostics_{d}")
    return written


def make_plots(results: str | Path, profile: str = DEFAULT_PROFILE,
               include_unfinished: bool = False) -> list[Path]:
    """The profile's figures, in ``<results>/<profile>/figures/``."""
    results = Path(results)
    sns.set_theme(style="whitegrid", context="notebook")
    coll = load_table_runs(results, profile, include_unfinished)
    for p in coll.problems:
        print(f"reproduce.plot: skipped {p.path}: {p.message}", file=sys.stderr)
    out = profile_dir(results, profile) / "figures"
    if not coll.runs:
        print(f"reproduce.plot: no finished runs under {out.parent / 'runs'}", file=sys.stderr)
        return []
    return plot_curves(coll, out) + plot_diagnostics(coll, out) + plot_figure_groups(coll, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="whose runs to plot (default: %(default)s)")
    p.add_argument("--include-unfinished", action="store_true",
                   help="also plot runs without DONE (in progress)")
    args = p.parse_args(argv)
    try:
        written = make_plots(args.results, args.profile, args.include_unfinished)
    except SpecError as exc:
        print(f"reproduce.plot: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
