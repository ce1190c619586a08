"""Returns and generalised advantage estimation over a batch of whole paths (NumPy).

Paths are flattened one after another; ``path_lengths`` splits them. Each path ends either
in termination (the value after it is 0) or in time-limit truncation (the value after it is
V(s_T), unless truncation is treated as terminal, as the authors' code did).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def discount_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """y_t = sum_{k>=0} discount^k x_{t+k}, over one path (a linear filter run backwards)."""
    return lfilter([1.0], [1.0, -discount], x[::-1])[::-1]


def path_end_values(last_values: np.ndarray, path_terminated: np.ndarray,
                    path_truncated: np.ndarray, bootstrap_truncation: bool,
                    path_cut: np.ndarray | None = None) -> np.ndarray:
    """V after each path's last step: 0 at termination; V(s_T) at truncation if bootstrapping,
    and always where the batch's end cut an episode that goes on (fixed-length rollouts).

    V_end = 0                      if the path terminated (or bootstrap_truncation is off)
    V_end = V(s_T)                 if the time limit truncated it, or the batch's end cut it
    """
    keep = path_truncated & ~path_terminated if bootstrap_truncation else np.zeros_like(
        path_truncated)
    if path_cut is not None:
        keep = keep | (np.asarray(path_cut, dtype=bool) & ~path_terminated)
    return np.where(keep, last_values, 0.0)


def gae_advantages(rewards: np.ndarray, values: np.ndarray, end_values: np.ndarray,
                   path_lengths: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16), per path.

    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t),   with V(s_T) = end_values[path]
    A_t     = sum_{l>=0} (gamma * lam)^l * delta_{t+l}
    """
    adv = np.empty_like(rewards, dtype=np.float64)
    start = 0
    for length, v_end in zip(path_lengths, end_values, strict=True):
        sl = slice(start, start + int(length))
        v = values[sl]
        v_next = np.append(v[1:], v_end)
        deltas = rewards[sl] + gamma * v_next - v
        adv[sl] = discount_cumsum(deltas, gamma * lam)
        start += int(length)
    return adv


def discounted_returns(rewards: np.ndarray, end_values: np.ndarray, path_lengths: np.ndarray,
                       gamma: float) -> np.ndarray:
    """Regression targets for the baseline, per path.

    R_t = sum_{k=t}^{T-1} gamma^(k-t) r_k + gamma^(T-t) * V_end
    """
    ret = np.empty_like(rewards, dtype=np.float64)
    start = 0
    for length, v_end in zip(path_lengths, end_values, strict=True):
        sl = slice(start, start + int(length))
        r = rewards[sl].astype(np.float64).copy()
        r[-1] += gamma * v_end
        ret[sl] = discount_cumsum(r, gamma)
        start += int(length)
    return ret


def standardize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(x - mean(x)) / (std(x) + eps), as the released code does to the learning signal."""
    return (x - x.mean()) / (x.std() + eps)


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - Var(target - pred) / Var(target); nan when the target is constant."""
    var = np.var(target)
    return float("nan") if var == 0 else float(1.0 - np.var(target - pred) / var)


def lambda_returns(advantages: np.ndarray, values: np.ndarray) -> np.ndarray:
    """TD(lambda) value targets, as sb3 and OpenAI baselines fit V (Schulman et al. 2016, §5).

    R^lambda_t = A^GAE(gamma, lambda)_t + V(s_t)
    """
    return np.asarray(advantages, np.float64) + np.asarray(values, np.float64)
