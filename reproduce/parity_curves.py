"""A finished parity run's return curve, and the numbers ``reproduce.parity``'s report reads
off it: env steps to a return milestone (censored when never crossed), the return near N env
steps, and the median [min–max] cells over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import DONE

WINDOW = 25000  # "return near N": mean over the batches with N - WINDOW < env_steps <= N


@dataclass
class Curve:
    steps: np.ndarray  # env_steps of the batches with a finite average_return
    returns: np.ndarray
    end: float  # env_steps of the last batch, whatever its return


def load_curve(out: Path) -> Curve | None:
    """A finished run's return curve; None without DONE or without rows."""
    path = out / "progress.csv"
    if not (out / DONE).is_file() or not path.is_file():
        return None
    df = pd.read_csv(path, usecols=[C.env_steps, C.average_return])
    x = pd.to_numeric(df[C.env_steps], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[C.average_return], errors="coerce").to_numpy(float)
    if not np.isfinite(x).any():
        return None
    ok = np.isfinite(x) & np.isfinite(y)
    return Curve(x[ok], y[ok], float(np.nanmax(x)))


def steps_to(curve: Curve, milestone: float) -> tuple[float, bool]:
    """(env_steps of the first batch with return > milestone, True), else (last steps, False)."""
    above = np.flatnonzero(curve.returns > milestone)
    return (float(curve.steps[above[0]]), True) if above.size else (curve.end, False)


def return_near(curve: Curve, n: float) -> float:
    """Mean return of the batches with n - WINDOW < env_steps <= n; NaN if there are none."""
    sel = (curve.steps > n - WINDOW) & (curve.steps <= n)
    return float(curve.returns[sel].mean()) if sel.any() else math.nan


def kilo(x: float) -> str:
    return f"{x / 1000:,.0f}k"


def milestone_cell(hits: list[tuple[float, bool]]) -> str:
    """Median [min–max] over seeds, a seed that never crossed counting as +infinity."""
    if not hits:
        return "-"
    vals = np.array([s if crossed else math.inf for s, crossed in hits])
    censored = [s for s, crossed in hits if not crossed]
    k = len(hits) - len(censored)
    med = float(np.median(vals))
    text = f"> {kilo(min(censored))}" if math.isinf(med) else kilo(med)
    if len(hits) > 1 and k > 0:
        hi = f">{kilo(max(censored))}" if censored else kilo(float(vals.max()))
        text += f" [{kilo(float(vals.min()))}–{hi}]"
    return f"{text}, {k}/{len(hits)} crossed"


def spread_cell(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "-"
    med = f"{float(np.median(vals)):,.0f}"
    return med if len(vals) == 1 else f"{med} [{min(vals):,.0f}–{max(vals):,.0f}]"
