"""Q-Prop's critic stability (issue 14), one run at a time: its divergence record, the
critic's fit statistics before the first divergence, and what is left of its return after
its peak; and one variant at a time: its runs on a domain, compared with the baseline's on
the seeds both have (fewer divergences, smaller TD losses, more of the best return kept).
:mod:`reproduce.stability` writes them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, mannwhitneyu

from qprop_tf.divergence import diverged_stretches, divergence_summary, during_divergence
from qprop_tf.progress import COLUMNS as C
from reproduce.compare import DomainResult, Side, episodes_to_threshold
from reproduce.results import Run
from reproduce.spec import EPISODE_STEPS, threshold

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


def divergences_text(runs: list[Run]) -> str:
    """The runs whose critic diverged, by seed, as ``s1 (from 455 ep, largest TD loss 2.2e+08,
    crossed during it)``; empty when none did (or none has a critic)."""
    out = []
    for r in sorted(runs, key=lambda r: r.seed):
        st = run_stability(r)
        if st.diverged:
            out.append(f"s{st.seed} (from {st.first_diverged_steps / EPISODE_STEPS:,.0f} ep, "
                       f"largest TD loss {st.max_loss:.2g}"
                       + (", crossed during it)" if st.crossed_during_divergence else ")"))
    return "; ".join(out)


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
    final_policy_std: float = math.nan  # policy_std over the last SMOOTH iterations

    @property
    def retained(self) -> float:
        """final / best: 1 = kept its best, 0.5 = lost half; NaN unless best > 0."""
        return self.final / self.best if self.best > 0 else math.nan


def after_peak(run: Run, smooth: int = SMOOTH) -> AfterPeak:
    """The run's best and last moving means of its return (``run.metric``), each over
    ``smooth`` iterations with a return (iterations in which no episode ended are skipped):
    a policy that collapses after its peak keeps a small share of its best. Also its policy
    std over the last ``smooth`` iterations: a step spent on the analytic term leaves the
    std where it was (issue 14, Walker)."""
    df = run.progress
    ret = pd.to_numeric(df[run.metric], errors="coerce")
    keep = ret.notna().to_numpy()
    if not keep.any():
        return AfterPeak(run.seed, math.nan, math.nan, math.nan, math.nan)
    steps = df[C.env_steps].to_numpy(float)[keep] / EPISODE_STEPS
    mean = ret[keep].rolling(smooth, min_periods=min(smooth, int(keep.sum()))).mean()
    mean = mean.to_numpy(float)
    i = int(np.nanargmax(mean))
    std = (pd.to_numeric(df[C.policy_std], errors="coerce").iloc[-smooth:].mean()
           if C.policy_std in df.columns else math.nan)
    return AfterPeak(run.seed, float(mean[i]), float(steps[i]), float(mean[-1]),
                     float(steps[-1]), float(std))


# ---------------------------------------------------------------------- per variant

@dataclass
class Variant:
    algo: str
    runs: list[Run]
    excluded: int
    records: list[RunStability]
    vs_baseline: DomainResult | None
    vs_reference: DomainResult | None

    @property
    def diverged_seeds(self) -> list[int]:
        return [r.seed for r in self.records if r.diverged]


def domain_variants(runs: list[Run], excluded: dict[tuple[str, str], int], domain: str,
                    baseline: str, reference: str) -> list[Variant]:
    """Every algorithm of ``domain`` but the reference (the baseline first), each compared
    with the baseline and the reference on the seeds both have."""
    here = [r for r in runs if r.domain == domain]
    names = sorted({r.algo for r in here} | {a for d, a in excluded if d == domain})
    variants = sorted((a for a in names if a != reference), key=lambda a: (a != baseline, a))

    def side(algo: str, seeds: set[int] | None = None) -> Side:
        rs = [r for r in here if r.algo == algo and (seeds is None or r.seed in seeds)]
        return Side(algo, sorted(rs, key=lambda r: r.seed),
                    excluded.get((domain, algo), 0) if seeds is None else 0)

    def paired(algo: str, other: str) -> DomainResult | None:
        seeds = {r.seed for r in here if r.algo == algo} & {r.seed for r in here
                                                           if r.algo == other}
        if algo == other or not seeds:
            return None
        return DomainResult(domain, threshold(domain), side(algo, seeds), side(other, seeds))

    out = []
    for a in variants:
        s = side(a)
        out.append(Variant(a, s.runs, s.unfinished, [run_stability(r) for r in s.runs],
                           paired(a, baseline), paired(a, reference)))
    return out


def reference_side(runs: list[Run], domain: str, reference: str) -> Side:
    return Side(reference, sorted([r for r in runs if r.domain == domain
                                   and r.algo == reference], key=lambda r: r.seed))


def _shared(variant: Variant, baseline: Variant | None
            ) -> tuple[list[RunStability], list[RunStability]]:
    """The two variants' records on the seeds both have (none against itself or no baseline)."""
    if baseline is None or variant.algo == baseline.algo:
        return [], []
    seeds = {r.seed for r in variant.records} & {r.seed for r in baseline.records}
    return ([r for r in variant.records if r.seed in seeds],
            [r for r in baseline.records if r.seed in seeds])


def fewer_divergences_p(variant: Variant, baseline: Variant | None) -> float:
    """One-sided Fisher exact p that the variant diverges on fewer seeds than the baseline,
    over the seeds both have (NaN without shared seeds, or for the baseline itself)."""
    mine, theirs = _shared(variant, baseline)
    if not mine:
        return math.nan
    v, b, n = sum(r.diverged for r in mine), sum(r.diverged for r in theirs), len(mine)
    return float(fisher_exact([[v, n - v], [b, n - b]], alternative="less").pvalue)


def smaller_losses_p(variant: Variant, baseline: Variant | None) -> float:
    """One-sided Mann-Whitney p that the variant's largest TD losses are smaller than the
    baseline's, over the seeds both have (NaN without shared seeds, or for the baseline)."""
    mine, theirs = _shared(variant, baseline)
    v, b = [r.max_loss for r in mine], [r.max_loss for r in theirs]
    if not mine or not all(map(math.isfinite, v + b)):
        return math.nan
    return float(mannwhitneyu(v, b, alternative="less").pvalue)


def retains_more_p(variant: Variant, baseline: Variant | None) -> float:
    """One-sided Mann-Whitney p that the variant keeps a larger share of its best return
    (:func:`after_peak`'s ``retained``) than the baseline, on the seeds both have."""
    if baseline is None or variant.algo == baseline.algo:
        return math.nan
    seeds = {r.seed for r in variant.runs} & {r.seed for r in baseline.runs}
    v = [after_peak(r).retained for r in variant.runs if r.seed in seeds]
    b = [after_peak(r).retained for r in baseline.runs if r.seed in seeds]
    if not v or not all(map(math.isfinite, v + b)):
        return math.nan
    return float(mannwhitneyu(v, b, alternative="greater").pvalue)
