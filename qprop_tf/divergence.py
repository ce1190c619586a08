"""Critic divergence, flagged by one rule: online in every run, and after the fact from a
progress.csv (committed runs that predate the ``critic_diverged`` column).

The rule (issue 14): iteration t is *diverged* when its TD loss exceeds ``FACTOR`` (100) times
the median of the TD losses of the earlier iterations that were not diverged themselves,
once there are at least ``WARMUP`` (5) of those:

    diverged_t = L_t > 100 * median{ L_k : k < t, L_k finite, not diverged_k }

The reference is the median of the *healthy* losses so that a divergence that lasts does not
raise its own yardstick: over every earlier loss, the median would climb into the diverged
regime once half of the run had diverged, and the flag would go off while the critic is
still far off. The warm-up keeps the first fits (whose losses start near 0 while the replay
fills) from setting the scale alone. Iterations without a fit (NaN loss) are never diverged
and do not enter the median. A TD loss naturally follows the scale of the returns, which on
the committed runs moves it by at most ~20x from its early median (Walker: 25 -> 84);
the blow-ups of Swimmer went 4-9 orders of magnitude past it.

A *stretch* is a run of consecutive diverged iterations; :func:`diverged_stretches` gives
them from a progress DataFrame, for the table (a crossing during a divergence) and the plot
(shading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FACTOR = 100.0
WARMUP = 5
LOSS_COLUMN = "critic_loss"
FLAG_COLUMN = "critic_diverged"


def exceeds_running_median(loss: float, healthy: np.ndarray, factor: float = FACTOR,
                           warmup: int = WARMUP) -> bool:
    """One iteration's flag: loss > factor * median(healthy), once len(healthy) >= warmup.

    ``healthy`` holds the finite, not diverged losses of the earlier iterations.
    """
    if np.isnan(loss) or len(healthy) < warmup:
        return False
    return bool(loss > factor * float(np.median(healthy)))


def divergence_flags(losses: np.ndarray, factor: float = FACTOR, warmup: int = WARMUP
                     ) -> np.ndarray:
    """The rule over a whole run: a bool per iteration (see :func:`exceeds_running_median`)."""
    monitor = DivergenceMonitor(factor, warmup)
    return np.array([monitor.update(float(x)) for x in np.asarray(losses, np.float64)],
                    dtype=bool)


class DivergenceMonitor:
    """The rule, one iteration at a time, for a run's critic; its state is the healthy
    losses so far (``healthy``)."""

    def __init__(self, factor: float = FACTOR, warmup: int = WARMUP) -> None:
        self.factor = float(factor)
        self.warmup = int(warmup)
        self.healthy: list[float] = []

    def update(self, loss: float) -> bool:
        """Flag this iteration's TD loss, then remember it if it is healthy."""
        diverged = exceeds_running_median(loss, np.asarray(self.healthy), self.factor,
                                          self.warmup)
        if not diverged and np.isfinite(loss):
            self.healthy.append(float(loss))
        return diverged

    def get_state(self) -> dict[str, np.ndarray]:
        return {"healthy": np.asarray(self.healthy, np.float64)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`; a checkpoint without it (older code) starts empty."""
        self.healthy = [float(x) for x in state.get("healthy", ())]


@dataclass(frozen=True)
class Stretch:
    """Consecutive diverged iterations ``first..last``; their rows' env steps run from
    ``steps_from`` (before the first one's batch) to ``steps_to`` (after the last one's)."""

    first: int
    last: int
    steps_from: int
    steps_to: int

    @property
    def iterations(self) -> int:
        return self.last - self.first + 1

    def contains_steps(self, env_steps: float) -> bool:
        """Whether a row logged at ``env_steps`` belongs to this stretch."""
        return self.steps_from < env_steps <= self.steps_to


def flags_of(df: Any) -> np.ndarray:
    """The diverged flag of each row of a progress DataFrame: its ``critic_diverged``
    column, or the rule recomputed from ``critic_loss`` when the column is missing or has
    blanks (runs logged, or begun, before the column existed); all False for a run without
    a critic."""
    if FLAG_COLUMN in df.columns and df[FLAG_COLUMN].notna().all():
        return np.asarray(df[FLAG_COLUMN], np.float64) > 0
    if LOSS_COLUMN in df.columns:
        return divergence_flags(np.asarray(df[LOSS_COLUMN], np.float64))
    return np.zeros(len(df), dtype=bool)


def diverged_stretches(df: Any) -> list[Stretch]:
    """The diverged stretches of a run, from its progress DataFrame (``iteration``,
    ``env_steps``, ``batch_steps`` and ``critic_diverged`` or ``critic_loss``)."""
    flags = flags_of(df)
    its = np.asarray(df["iteration"], np.int64)
    ends = np.asarray(df["env_steps"], np.int64)
    if "batch_steps" in df.columns:
        starts = ends - np.asarray(df["batch_steps"], np.int64)
    else:  # a progress file without it: each row starts where the previous one ended
        starts = np.concatenate([[0], ends[:-1]])
    out: list[Stretch] = []
    i, n = 0, len(flags)
    while i < n:
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and flags[j + 1]:
            j += 1
        out.append(Stretch(int(its[i]), int(its[j]), int(starts[i]), int(ends[j])))
        i = j + 1
    return out


def during_divergence(stretches: list[Stretch], env_steps: float) -> bool:
    """Whether the row logged at ``env_steps`` (e.g. a threshold crossing) is diverged."""
    return any(s.contains_steps(env_steps) for s in stretches)


def divergence_summary(df: Any) -> dict[str, Any]:
    """DONE's fields: ``critic_diverged_iterations`` (how many), and the first diverged
    iteration and its env steps (None when there is none)."""
    stretches = diverged_stretches(df)
    first = stretches[0] if stretches else None
    flags = flags_of(df)
    steps = np.asarray(df["env_steps"], np.int64)
    return {"critic_diverged_iterations": int(flags.sum()),
            "critic_diverged_stretches": len(stretches),
            "first_diverged_iteration": None if first is None else first.first,
            "first_diverged_env_steps": None if first is None else int(steps[flags][0])}


def progress_divergence(progress_csv: Any) -> dict[str, Any]:
    """:func:`divergence_summary` of a progress.csv file (empty for a missing or empty
    file, or a run without a critic)."""
    import pandas as pd

    try:
        df = pd.read_csv(progress_csv)
    except (OSError, pd.errors.EmptyDataError):
        return {}
    if df.empty or (FLAG_COLUMN not in df.columns and LOSS_COLUMN not in df.columns):
        return {}
    return divergence_summary(df)
