"""What every figure of reproduce/ shares: the Agg backend, stable colours and labels per
algorithm, the bootstrap band of a mean over seeds, curves resampled onto a common grid, the
legend, and a byte-stable ``save``."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from qprop_tf.progress import COLUMNS as C  # noqa: E402
from reproduce.algo_names import paper_name, untagged  # noqa: E402
from reproduce.results import Run  # noqa: E402
from reproduce.spec import TABLE1_ALGOS, algos  # noqa: E402

__all__ = ["plt", "sns", "algo_order", "palette", "dashes", "label", "mean_ci", "resample",
           "grid_of", "domains_env", "legend_handles", "save"]

GRID_POINTS = 150
N_BOOT = 300


def algo_order(names: set[str]) -> list[str]:
    known = [a for a in (*TABLE1_ALGOS, *algos()) if a in names]
    return list(dict.fromkeys(known)) + sorted(names - set(known))


def palette(names: list[str]) -> dict[str, tuple[float, float, float]]:
    """Stable colours: the same algorithm has the same colour in every figure; a tagged row
    ``<algo>@<profile>`` (``results.load_table_runs``) has its algorithm's, drawn dash-dot
    (:func:`dashes`)."""
    plain = {untagged(a) for a in names}
    every = algo_order(set(algos()) | plain)
    colors = sns.color_palette("tab10", 10) + sns.color_palette("Set2", 8)
    out = {a: colors[i % len(colors)] for i, a in enumerate(every)}
    return out | {a: out[untagged(a)] for a in names}


def dashes(algo: str) -> tuple[float, ...] | str:
    """A tagged row's line (dash-dot, apart from the threshold's dashes); others solid."""
    return (4.0, 1.5, 1.0, 1.5) if "@" in algo else ""


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


def grid_of(runs: list[Run]) -> np.ndarray:
    end = max(float(r.progress[C.paper_episodes].max()) for r in runs)
    start = min(float(r.progress[C.paper_episodes].min()) for r in runs)
    return np.linspace(start, end, GRID_POINTS)


def domains_env(domain: str) -> str:
    from qprop_tf.envs import DOMAINS

    return DOMAINS.get(domain, domain)


def legend_handles(colors: dict, present: list[str], unfinished: bool = False
                   ) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[a], lw=2, **({"dashes": dashes(a)} if "@" in a
                                                         else {})) for a in present]
    labels = [label(a) for a in present]
    handles += [Line2D([], [], color="0.35", ls="--", lw=1),
                Line2D([], [], marker="*", color="0.5", mec="black", ms=12, ls="none")]
    labels += ["threshold", "paper's crossing point (colour = algorithm)"]
    if unfinished:
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1))
        labels.append("dotted: an unfinished run so far (not in the mean)")
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
