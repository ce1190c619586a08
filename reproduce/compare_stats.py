"""The numbers of ``reproduce.compare``: censored medians, the bootstrap CI of a ratio of
medians, the verdict, and how they print. Arrays in, numbers and text out; no results tree.

A value comes with a censoring flag (True: the run never crossed, the value is its censoring
point and the true value lies above it). The rules, in words, are in ``reproduce.compare``'s
docstring (printed in its report):

- ``censored_median``: censored = +inf; ``median_lower_bound``: censored at its point.
- ``median_ci``: a median with its bootstrap 95% CI (>= ``MIN_SEEDS`` seeds) or min-max.
- ``ratio_bounds`` / ``ratio_ci``: median(A) / median(B), its bounds given the censoring, and
  its unpaired percentile-bootstrap CI; ``verdict`` reads the CI.
- ``fmt_episodes``, ``fmt_median``, ``fmt_ratio``: the table cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from reproduce.table_format import fmt_episodes  # noqa: F401 (re-exported: the cells)

N_RESAMPLES = 10000
MIN_SEEDS = 3
LOG_CAP = 1e4  # +-inf log ratios are clipped to this so percentile interpolation stays finite
UNBOUNDED = 50.0  # |log| beyond this decodes to 0 / inf (a real ratio is never e^50)


# ---------------------------------------------------------------------- statistics

def _arrays(values: object, censored: object) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float).ravel()
    c = np.asarray(censored, dtype=bool).ravel()
    if v.shape != c.shape:
        raise ValueError(f"{v.size} values but {c.size} censoring flags")
    return v, c


def _medians(v: np.ndarray, c: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median with censored at the censoring point, median with censored = +inf)."""
    return np.median(v[idx], axis=-1), np.median(np.where(c, np.inf, v)[idx], axis=-1)


def censored_median(values: object, censored: object) -> float:
    """Median with censored values as +inf (inf when half or more are censored)."""
    v, c = _arrays(values, censored)
    return float(_medians(v, c, np.arange(v.size))[1]) if v.size else math.nan


def censored_quantile(values: object, censored: object, q: float) -> float:
    """The q-quantile (linear interpolation) with censored values as +inf: inf as soon as
    the interpolation touches a censored value."""
    v = np.asarray(values, dtype=float).ravel()
    c = np.asarray(censored, dtype=bool).ravel()
    if v.size == 0:
        return math.nan
    x = np.sort(np.where(c, np.inf, v))
    pos = q * (x.size - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or x[hi] == x[lo]:
        return float(x[lo])
    if math.isinf(x[hi]):
        return math.inf
    return float(x[lo] + (x[hi] - x[lo]) * (pos - lo))


def median_lower_bound(values: object, censored: object) -> float:
    """Median with censored values at their censoring points: a lower bound of the median."""
    v, c = _arrays(values, censored)
    return float(np.median(v)) if v.size else math.nan


def _decode(x: float) -> float:
    return math.inf if x >= UNBOUNDED else 0.0 if x <= -UNBOUNDED else math.exp(x)


def _bounds_ci(samples: list[tuple[np.ndarray, np.ndarray]],
               stat: Callable[..., tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Percentile bootstrap over seed indices; ``stat`` gives (lower bound, upper bound)
    arrays per resample; returns (2.5th pct of the lower, 97.5th pct of the upper)."""
    def encoded(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        lo, hi = stat(*(np.asarray(i, dtype=int) for i in idx))
        with np.errstate(divide="ignore"):
            return np.clip(np.log(np.stack([lo, hi])), -LOG_CAP, LOG_CAP)

    res = bootstrap(tuple(np.arange(v.size) for v, _ in samples), encoded, paired=False,
                    vectorized=True, method="percentile", n_resamples=N_RESAMPLES,
                    rng=np.random.default_rng(0))
    ci = res.confidence_interval
    return _decode(float(ci.low[0])), _decode(float(ci.high[1]))


@dataclass(frozen=True)
class MedianCI:
    median: float  # censored = +inf
    bound: float  # censored at the censoring point (== median unless the median is censored)
    lo: float
    hi: float
    kind: str  # "bootstrap 95% CI", "min-max", "single seed", ""


def median_ci(values: object, censored: object) -> MedianCI:
    v, c = _arrays(values, censored)
    if v.size == 0:
        return MedianCI(math.nan, math.nan, math.nan, math.nan, "")
    med, bound = censored_median(v, c), median_lower_bound(v, c)
    if v.size == 1:
        return MedianCI(med, bound, med, med, "single seed")
    if v.size < MIN_SEEDS:
        return MedianCI(med, bound, float(v.min()), float(np.where(c, np.inf, v).max()),
                        "min-max")
    lo, hi = _bounds_ci([(v, c)], lambda i: _medians(v, c, i))
    return MedianCI(med, bound, lo, hi, "bootstrap 95% CI")


def ratio_bounds(a_values: object, a_censored: object, b_values: object, b_censored: object
                 ) -> tuple[float, float]:
    """(lower, upper) bound of median(A) / median(B) given the censoring (equal if none)."""
    (av, ac), (bv, bc) = _arrays(a_values, a_censored), _arrays(b_values, b_censored)
    a_cp, a_inf = _medians(av, ac, np.arange(av.size))
    b_cp, b_inf = _medians(bv, bc, np.arange(bv.size))
    return float(a_cp / b_inf), float(np.divide(a_inf, b_cp) if b_cp > 0 else np.inf)


def ratio_ci(a_values: object, a_censored: object, b_values: object, b_censored: object
             ) -> tuple[float, float, float]:
    """(median(A)/median(B) with censored = +inf, CI low, CI high); NaN CI with < 3 seeds a side.

    The ratio is inf when only A's median is censored, 0 when only B's, NaN when both.
    """
    (av, ac), (bv, bc) = _arrays(a_values, a_censored), _arrays(b_values, b_censored)
    if av.size == 0 or bv.size == 0:
        return math.nan, math.nan, math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = float(np.divide(censored_median(av, ac), censored_median(bv, bc)))
    if min(av.size, bv.size) < MIN_SEEDS:
        return ratio, math.nan, math.nan

    def stat(ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_cp, a_inf = _medians(av, ac, ia)
        b_cp, b_inf = _medians(bv, bc, ib)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a_cp / b_inf, a_inf / b_cp

    lo, hi = _bounds_ci([(av, ac), (bv, bc)], stat)
    return ratio, lo, hi


def verdict(ratio: float, lo: float, hi: float, n_a: int, n_b: int) -> str:
    if n_a == 0 or n_b == 0:
        return "too few seeds"
    if math.isnan(ratio):
        return "not comparable"  # both medians censored
    if min(n_a, n_b) < MIN_SEEDS or math.isnan(lo) or math.isnan(hi):
        return "too few seeds"
    if hi < 1:
        return "A faster"
    if lo > 1:
        return "A slower"
    return "no difference shown"


# ---------------------------------------------------------------------- formatting

def fmt_median(m: MedianCI) -> str:
    if math.isnan(m.median):
        return "-"
    text = fmt_episodes(m.median, m.bound)
    if m.kind in ("", "single seed"):
        return text
    rng = f"[{fmt_episodes(m.lo)}–{fmt_episodes(m.hi)}]"
    return f"{text} {rng}" + (" (min-max)" if m.kind == "min-max" else "")


def _r(x: float) -> str:
    return "∞" if math.isinf(x) else "0" if x == 0 else f"{x:.2f}"


def fmt_ratio(ratio: float, lo: float, hi: float, bounds: tuple[float, float]) -> str:
    if math.isnan(ratio):
        return "-"
    point = (f"> {_r(bounds[0])}" if math.isinf(ratio) else
             f"< {_r(bounds[1])}" if ratio == 0 else _r(ratio))
    return point + (" (no CI)" if math.isnan(lo) else f" [{_r(lo)}–{_r(hi)}]")

