"""The Q-Prop diagnostics figure (``diagnostics_<Domain>.png``) and the shading of a critic's
diverged stretches, which the stability figures share."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from qprop_tf.divergence import diverged_stretches
from qprop_tf.progress import COLUMNS as C
from reproduce.plot_style import (
    algo_order,
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
from reproduce.results import Collection, Run
from reproduce.spec import EPISODE_STEPS, domains

DIAGNOSTICS = (C.signal_var_before, C.signal_var_after, C.eta_one_fraction, C.corr_adv_abar,
               C.critic_loss)

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
        grid = grid_of(runs)
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
        handles, labels = legend_handles(colors, present)
        fig.legend(handles[:len(present)], labels[:len(present)], loc="lower center",
                   ncol=len(present), fontsize=11, frameon=False, bbox_to_anchor=(0.5, -0.01))
        fig.suptitle(f"Q-Prop diagnostics on {d} ({domains_env(d)}): mean over seeds, "
                     "95% band", fontsize=14)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        written += save(fig, out, f"diagnostics_{d}")
    return written
