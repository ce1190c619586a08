"""One run's numbers against a threshold, as Table 1 counts them: its first crossing (in
paper episodes, env steps and real episodes), its max return within the paper's 30000
episodes, where it ended and why, and where a run that never crossed is censored.
Shared by ``reproduce.table``, ``reproduce.table_plot`` and ``reproduce.table_seeds``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qprop_tf.divergence import diverged_stretches, during_divergence
from qprop_tf.progress import COLUMNS as C
from reproduce.results import Run
from reproduce.spec import EPISODE_STEPS, PAPER_BUDGET_EPISODES


@dataclass
class RunStats:
    crossed: bool
    cross_episodes: float  # paper episodes at the first crossing (nan if none)
    cross_env_steps: float
    cross_real_episodes: float
    max_return: float  # within the first 30000 paper episodes
    end_episodes: float  # last logged paper episode
    full_budget: bool  # ran the paper's 30000 episodes (no early stop, budget >= 30000)
    budget_episodes: float
    stopped_early: bool
    crossed_diverged: bool = False  # the crossing's row lies in a critic-divergence stretch
    # where a run that never crossed is censored: its last row within the first 30000 episodes
    censor_episodes: float = math.nan
    censor_env_steps: float = math.nan
    censor_real_episodes: float = math.nan


def run_stats(run: Run, thresh: float) -> RunStats:
    df = run.progress
    window = df[df[C.paper_episodes] <= PAPER_BUDGET_EPISODES]
    if window.empty:  # the first row already lies beyond 30000 episodes
        window = df.iloc[:1]
    above = window[window[run.metric] > thresh]
    budget = run.budget_steps
    budget_ep = budget / EPISODE_STEPS if budget is not None else float(df[C.paper_episodes].max())
    full = (not run.stopped_early and budget_ep >= PAPER_BUDGET_EPISODES
            and float(df[C.paper_episodes].max()) >= PAPER_BUDGET_EPISODES * 0.99)
    if above.empty:
        cross = (math.nan, math.nan, math.nan)
    else:
        row = above.iloc[0]
        cross = (float(row[C.paper_episodes]), float(row[C.env_steps]),
                 float(row[C.real_episodes]))
    diverged = (not above.empty
                and during_divergence(diverged_stretches(df), cross[1]))
    last = window.iloc[-1]  # censored at its budget or where it ended, as reproduce.compare
    censor_ep = min(float(last[C.paper_episodes]), budget_ep)
    return RunStats(not above.empty, *cross, float(window[run.metric].max()),
                    float(df[C.paper_episodes].max()), full, budget_ep, run.stopped_early,
                    diverged, censor_ep,
                    min(float(last[C.env_steps]), censor_ep * EPISODE_STEPS),
                    float(last[C.real_episodes]))


HOLD_STEPS = 25_000
"""The window of :func:`held_crossing`: Table 1's largest batch, TRPO's 25000 steps."""


def held_crossing(env_steps: np.ndarray, returns: np.ndarray, weights: np.ndarray,
                  thresh: float, window: float = HOLD_STEPS) -> float:
    """The env steps at the first row where the return *held* above the threshold: where the
    weighted mean of the rows within the last ``window`` env steps exceeds it,

        held = min{ t_i : t_i >= window, sum_{j: t_j > t_i - window} w_j R_j / sum w_j > thresh }

    (w: the episodes each row's mean return averages; NaN when it never held). Table 1's
    crossing is one row, so a batch of a few episodes can cross on one lucky episode; over
    a fixed window of env steps, batch sizes compare on equal noise. Not the paper's metric:
    ``seeds.md`` shows it beside the paper's crossing, and the table never uses it."""
    t = np.asarray(env_steps, np.float64)
    w = np.asarray(weights, np.float64)
    wr = np.cumsum(np.where(w > 0, w * np.asarray(returns, np.float64), 0.0))
    cw = np.cumsum(np.clip(w, 0.0, None))
    first = np.searchsorted(t, t - window, side="right")  # first row inside each window
    prev_wr = np.where(first > 0, wr[np.maximum(first - 1, 0)], 0.0)
    prev_w = np.where(first > 0, cw[np.maximum(first - 1, 0)], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (wr - prev_wr) / (cw - prev_w)
    ok = (t >= window) & (mean > thresh)
    return float(t[np.argmax(ok)]) if ok.any() else math.nan
