"""Q-Prop's critic stability, one run at a time (issue 14): its divergence record, the
critic's fit statistics before the first divergence, and what is left of its return after
its peak. :mod:`reproduce.stability` puts them side by side per variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qprop_tf.divergence import diverged_stretches, divergence_summary, during_divergence
from qprop_tf.progress import COLUMNS as C
from reproduce.compare import episodes_to_threshold
from reproduce.results import Run
from reproduce.spec import EPISODE_STEPS

WINDOW = 10  # iterations before the first divergence that the mechanism table summarises
SMOOTH = 10  # iterations in the moving mean of the return the after-peak record reads

@dataclass(frozen=True)
class RunStability:
    seed: int
    iterations: int
    diverged: bool
    first_diverged_steps: float  # NaN when it never diverged
    max_loss: float
    max_abs_q: float
    crossed_during_divergence: bool


def _column_max(df: pd.DataFrame, column: str, absolute: bool = False) -> float:
    if column not in df.columns:
        return math.nan
    x = pd.to_numeric(df[column], errors="coerce").to_numpy(float)
    x = np.abs(x) if absolute else x
    x = x[np.isfinite(x)]
    return float(x.max()) if x.size else math.nan


def run_stability(run: Run) -> RunStability:
    """One run's divergence record (:mod:`qprop_tf.divergence`) and its crossing."""
    df = run.progress
    stretches = diverged_stretches(df)  # none for a run without a critic
    first = (divergence_summary(df)["first_diverged_env_steps"] if stretches else None)
    first = math.nan if first is None else float(first)
    x = episodes_to_threshold(run)
    during = (not x.censored) and during_divergence(stretches, x.episodes * EPISODE_STEPS)
    return RunStability(run.seed, len(df), bool(stretches), first,
                        _column_max(df, C.critic_loss), _column_max(df, C.critic_mean_q, True),
                        during)


@dataclass(frozen=True)
class Mechanism:
    seed: int
    diverged: bool
    window: str  # which iterations the medians are over
    oob_fraction: float  # median share of mu(s') outside the bounds
    max_abs_mu: float
    target_max_abs: float  # the largest |y| in the fits
    target_oob_max_abs: float  # the largest |y| among out-of-bounds bootstrap actions


def _window_median(df: pd.DataFrame, column: str, rows: slice) -> float:
    if column not in df.columns:
        return math.nan
    x = pd.to_numeric(df[column].iloc[rows], errors="coerce").to_numpy(float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def mechanism(run: Run, window: int = WINDOW) -> Mechanism:
    """Medians of the fit statistics over the ``window`` iterations before the first
    divergence (or the run's last ``window`` when it never diverged)."""
    df = run.progress
    stretches = diverged_stretches(df)  # none for a run without a critic
    if stretches:
        end = int(np.flatnonzero(df["iteration"].to_numpy() == stretches[0].first)[0])
        text = f"{window} before iteration {stretches[0].first}"
    else:
        end = len(df)
        text = f"last {window} (no divergence)"
    rows = slice(max(0, end - window), end)
    return Mechanism(run.seed, bool(stretches), text,
                     _window_median(df, C.critic_oob_fraction, rows),
                     _window_median(df, C.critic_max_abs_mu, rows),
                     _window_median(df, C.critic_target_max_abs, rows),
                     _window_median(df, C.critic_target_oob_max_abs, rows))


@dataclass(frozen=True)
class AfterPeak:
    seed: int
    best: float  # the best moving mean of the return (SMOOTH iterations)
    best_episodes: float  # where it was (paper episodes, the end of its window)
    final: float  # the moving mean over the run's last SMOOTH iterations
    final_episodes: float

    @property
    def retained(self) -> float:
        """final / best: 1 = kept its best, 0.5 = lost half; NaN unless best > 0."""
        return self.final / self.best if self.best > 0 else math.nan


def after_peak(run: Run, smooth: int = SMOOTH) -> AfterPeak:
    """The run's best and last moving means of its return (``run.metric``), each over
    ``smooth`` iterations with a return (iterations in which no episode ended are skipped):
    a policy that collapses after its peak keeps a small share of its best."""
    df = run.progress
    ret = pd.to_numeric(df[run.metric], errors="coerce")
    keep = ret.notna().to_numpy()
    if not keep.any():
        return AfterPeak(run.seed, math.nan, math.nan, math.nan, math.nan)
    steps = df[C.env_steps].to_numpy(float)[keep] / EPISODE_STEPS
    mean = ret[keep].rolling(smooth, min_periods=min(smooth, int(keep.sum()))).mean()
    mean = mean.to_numpy(float)
    i = int(np.nanargmax(mean))
    return AfterPeak(run.seed, float(mean[i]), float(steps[i]), float(mean[-1]),
                     float(steps[-1]))
