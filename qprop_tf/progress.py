"""The columns of progress.csv, in their order: the one schema every module takes them from.

A row is one iteration (DDPG: one epoch) and is made of groups, each a dataclass whose
fields are the columns::

    Episodes     every algo    the budget so far and the episodes that ended in the iteration
    PolicyStep   trpo, vpg, Q-Prop   the policy update, the baseline's fit
    QPropStats   Q-Prop        the critic and the control variate
    DDPGStats    ddpg          the noise-free evaluation, the critic and actor updates
    Times        every algo    wall-clock times, speed and memory

so that a row of an on-policy run is Episodes + PolicyStep (+ QPropStats) + Times, and one
of DDPG is Episodes + DDPGStats + Times. Producers fill the dataclasses (a misspelt column
is a TypeError); readers take the names from :data:`COLUMNS` (``COLUMNS.env_steps`` is
``"env_steps"``; a name that is no column raises AttributeError) or the group tuples.
"""

from __future__ import annotations

import dataclasses
import resource
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

PAPER_EPISODE_STEPS = 1000
"""The paper's "episode" on its x-axis is 1000 env steps (iteration * batch_size / 1000)."""


@dataclass
class Episodes:
    """The budget so far, and the training episodes that ended in this iteration (NaN
    statistics when none did: fixed-length rollouts, long DDPG episodes)."""

    iteration: int
    env_steps: int
    paper_episodes: float  # env_steps / 1000, the unit of the paper's x-axes
    real_episodes: int  # training episodes ended so far
    batch_steps: int
    batch_episodes: int
    average_return: float  # undiscounted, unscaled
    std_return: float
    min_return: float
    max_return: float
    max_return_so_far: float  # of average_return (DDPG: of eval_return)
    average_length: float
    terminated_fraction: float  # of the episodes that ended, those that terminated


@dataclass
class PolicyStep:
    """The on-policy update (TRPO or VPG) and the baseline's fit."""

    mean_kl: float
    entropy: float
    policy_std: float
    loss_before: float
    loss_after: float
    grad_norm: float
    line_search_accepted: int
    backtracks: int
    explained_variance: float  # of the baseline the advantages used
    advantage_std: float


@dataclass
class QPropStats:
    """Q-Prop's critic fit and control variate (:meth:`QPropControlVariate.process`)."""

    critic_loss: float
    critic_mean_q: float
    critic_updates: int
    replay_size: int
    eta_mean: float
    eta_one_fraction: float
    corr_adv_abar: float
    signal_var_before: float  # var(A_hat)
    signal_var_after: float  # var(A_hat - eta A_bar)
    abar_std: float
    critic_time: float
    analytic_scale: float = 1.0  # the analytic term's factor (scale_analytic)
    # The critic's fit, over its minibatches (critic.FIT_STATS; issue 14): the bootstrap
    # actions mu(s') outside the action bounds (fraction of rows), the largest |mu(s')|, the
    # TD targets' mean and largest |y| and both at out-of-bounds mu(s'), the TD
    # gradient's global norm (mean and largest, before any clip)
    critic_oob_fraction: float = float("nan")
    critic_max_abs_mu: float = float("nan")
    critic_target_mean_abs: float = float("nan")
    critic_target_max_abs: float = float("nan")
    critic_target_oob_mean_abs: float = float("nan")
    critic_target_oob_max_abs: float = float("nan")
    critic_grad_norm: float = float("nan")
    critic_grad_norm_max: float = float("nan")
    critic_diverged: int = 0  # 1: TD loss > 100x the median of the healthy ones (divergence)
    # The analytic term in the policy step (optim.analytic_step_share): its gradient's norm,
    # and its share of the step's first-order loss decrease (TRPO: along the natural-gradient
    # step; VPG: along -grad)
    analytic_grad_norm: float = float("nan")
    analytic_step_share: float = float("nan")


@dataclass
class DDPGStats:
    """DDPG's noise-free evaluation after the epoch and its updates (update-weighted means)."""

    eval_return: float
    eval_std_return: float
    eval_min_return: float
    eval_max_return: float
    eval_episodes: int
    eval_steps: int
    eval_average_length: float
    critic_loss: float
    mean_q: float
    actor_loss: float
    updates: int
    replay_size: int
    critic_diverged: int = 0  # as Q-Prop's (qprop_tf.divergence)


@dataclass
class Times:
    """Wall-clock seconds (``time``: since the run started, resumes included), the process's
    CPU seconds the same way (``cpu_time``: what a run costs when more runs than cores share
    the machine; NaN after a resume from a checkpoint that predates it) and memory."""

    time: float
    iteration_time: float
    sample_time: float
    update_time: float
    steps_per_second: float  # batch_steps / (sample_time + update_time)
    max_rss_mb: float
    cpu_time: float = float("nan")


def names(group: type) -> tuple[str, ...]:
    """The columns of a group, in order."""
    return tuple(f.name for f in dataclasses.fields(group))


ON_POLICY_COLUMNS = (*names(Episodes), *names(PolicyStep), *names(Times))
QPROP_COLUMNS = (*names(Episodes), *names(PolicyStep), *names(QPropStats), *names(Times))
DDPG_COLUMNS = (*names(Episodes), *names(DDPGStats), *names(Times))
TIME_COLUMNS = (*names(Times), "critic_time")
"""Columns that depend on wall-clock time or the machine; the rest is a function of the seed."""
COLUMNS = SimpleNamespace(**{c: c for c in (*QPROP_COLUMNS, *DDPG_COLUMNS)})


@dataclass
class Iteration:
    """What an algorithm's ``iterate`` hands the run shell: the env steps it took, the
    training episodes that ended in it, the score ``max_return_so_far`` follows (the mean
    training return; DDPG: the evaluation return), its own column groups, and the seconds
    spent sampling and updating."""

    steps: int
    returns: np.ndarray
    lengths: np.ndarray
    terminated: int
    score: float
    columns: tuple[Any, ...]
    sample_time: float
    update_time: float


def make_row(it: Iteration, iteration: int, env_steps: int, real_episodes: int,
             max_return: float, elapsed: float, iteration_time: float,
             cpu_time: float = float("nan")) -> dict[str, Any]:
    """One row of progress.csv: Episodes, the algorithm's groups, Times (counters already
    include this iteration)."""
    n, rets = len(it.returns), it.returns
    nan = float("nan")
    episodes = Episodes(
        iteration=iteration, env_steps=env_steps,
        paper_episodes=env_steps / PAPER_EPISODE_STEPS, real_episodes=real_episodes,
        batch_steps=it.steps, batch_episodes=n,
        average_return=float(np.mean(rets)) if n else nan,
        std_return=float(np.std(rets)) if n else nan,
        min_return=float(np.min(rets)) if n else nan,
        max_return=float(np.max(rets)) if n else nan,
        max_return_so_far=max_return,
        average_length=float(np.mean(it.lengths)) if n else nan,
        terminated_fraction=it.terminated / n if n else nan)
    times = Times(
        time=elapsed, iteration_time=iteration_time, sample_time=it.sample_time,
        update_time=it.update_time,
        steps_per_second=it.steps / max(it.sample_time + it.update_time, 1e-9),
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        cpu_time=cpu_time)
    row: dict[str, Any] = {}
    for group in (episodes, *it.columns, times):
        row.update(vars(group))
    return row
