"""The Q-Prop estimator: a Taylor-expansion control variate from an off-policy critic.

    grad J = E[ grad log pi(a|s) * (A_hat(s,a) - eta(s) * A_bar(s,a)) ]
           + E[ eta(s) * grad_a Q_w(s,a)|_{a=mu(s)} * grad_theta mu_theta(s) ]        (Gu et al.)

As in the released code, the first term is fed to TRPO/VPG as the learning signal
A_hat - eta*A_bar (standardised), and the second as the analytic loss
-mean(eta * Q_w(s, mu_theta(s))), which is differentiated through mu_theta only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from qprop_tf.config import ETA_RULES
from qprop_tf.divergence import DivergenceMonitor
from qprop_tf.progress import QPropStats
from qprop_tf.state import prefixed, unprefixed

QFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
"""Q_w(obs, act) -> [N]."""



def taylor_control_variate(dq_da: np.ndarray, act: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """First-order Taylor term of the critic around the policy mean.

    A_bar(s, a) = grad_a Q_w(s, a)|_{a=mu(s)} . (a - mu(s))
    """
    return np.sum(np.asarray(dq_da, np.float64) * (np.asarray(act, np.float64)
                                                    - np.asarray(mean, np.float64)), axis=-1)


def eta_ones(adv: np.ndarray, a_bar: np.ndarray) -> np.ndarray:
    """Standard Q-Prop: eta = 1 for every sample."""
    return np.ones_like(np.asarray(adv, np.float64))


def eta_conservative(adv: np.ndarray, a_bar: np.ndarray) -> np.ndarray:
    """Conservative Q-Prop (the code's ``adapt1``): eta_i = 1 if A_hat_i * A_bar_i > 0 else 0.

    A per-sample stand-in for "use the control variate only where it is positively
    correlated with the advantage", computed from the raw (unstandardised) GAE advantage.
    """
    return (np.asarray(adv) * np.asarray(a_bar) > 0).astype(np.float64)


def eta_aggressive(adv: np.ndarray, a_bar: np.ndarray) -> np.ndarray:
    """Aggressive Q-Prop (the code's ``adapt2``): eta_i = sign(A_hat_i * A_bar_i)."""
    return np.sign(np.asarray(adv) * np.asarray(a_bar)).astype(np.float64)


def eta_star(adv: np.ndarray, a_bar: np.ndarray) -> float:
    """Fully adaptive eta (the paper's eta*, never run by the authors).

    eta* = Cov(A_hat, A_bar) / Var(A_bar)   (0 when A_bar has no variance)
    """
    adv = np.asarray(adv, np.float64)
    a_bar = np.asarray(a_bar, np.float64)
    var = np.var(a_bar)
    if adv.size < 2 or var <= 0:
        return 0.0
    return float(np.mean((adv - adv.mean()) * (a_bar - a_bar.mean())) / var)


def eta_adaptive_crossfit(adv: np.ndarray, a_bar: np.ndarray, path_ids: np.ndarray,
                          fallback: float = 1.0) -> np.ndarray:
    """Fully adaptive eta, cross-fitted over two halves of the batch so that it is unbiased.

    Paths are split by parity of their index in the batch (fold = path_id mod 2, which does
    not depend on any sampled action); each fold gets the eta* estimated on the other fold:
        eta_i = eta*(A_hat[fold != fold_i], A_bar[fold != fold_i])
    A sample's eta is then independent of its own action, so E[grad log pi * eta * A_bar]
    = E[eta * grad_theta mu^T grad_a Q] still holds. With a single path, ``fallback`` (the
    previous batch's estimate) is used.
    """
    fold = np.asarray(path_ids) % 2
    eta = np.full(fold.shape, float(fallback))
    if np.all(fold == 0) or np.all(fold == 1):
        return eta
    for f in (0, 1):
        other = fold != f
        eta[fold == f] = eta_star(adv[other], a_bar[other])
    return eta


def compute_eta(rule: str, adv: np.ndarray, a_bar: np.ndarray, path_ids: np.ndarray,
                fallback: float = 1.0) -> np.ndarray:
    if rule == "ones":
        return eta_ones(adv, a_bar)
    if rule == "conservative":
        return eta_conservative(adv, a_bar)
    if rule == "aggressive":
        return eta_aggressive(adv, a_bar)
    if rule == "adaptive":
        return eta_adaptive_crossfit(adv, a_bar, path_ids, fallback)
    raise ValueError(f"unknown eta rule {rule!r}; valid: {', '.join(ETA_RULES)}")


def qprop_learning_signal(adv: np.ndarray, eta: np.ndarray, a_bar: np.ndarray) -> np.ndarray:
    """The on-policy part's learning signal: l_i = A_hat_i - eta_i * A_bar_i."""
    return np.asarray(adv, np.float64) - np.asarray(eta, np.float64) * a_bar


def qprop_analytic_loss(q_fn: QFn, obs: tf.Tensor, mean: tf.Tensor, eta: tf.Tensor,
                        reward_scale: float = 1.0) -> tf.Tensor:
    """The analytic (off-policy) part, as a loss to minimise.

    L_Q(theta) = -mean_i[ eta_i * Q_w(s_i, mu_theta(s_i)) / c ];
    grad L_Q = -mean_i[ eta_i * grad_a Q_w(s_i, a)|_{a=mu(s_i)} * grad_theta mu_theta(s_i) ] / c.
    c is the critic's reward scale (Q_w learns c times the return; the authors' code divides
    it back, ``q_baseline.py``: ``qvalue /= scale_reward``). The critic's weights get no
    gradient: optimisers differentiate w.r.t. the policy only.
    """
    q = q_fn(obs, mean)
    if reward_scale != 1.0:
        q = q / reward_scale
    return -tf.reduce_mean(tf.cast(eta, mean.dtype) * q)


# ----------------------------------------------------------------------- the composition
class QPropControlVariate:
    """Turns an on-policy learner into Q-Prop: critic + replay + Taylor control variate.

    Per iteration, in the released code's order (``fit_critic_first=False``): A_bar and eta
    come from the critic as it was before this iteration, then the batch joins the replay,
    the critic is fitted, and the policy step's analytic term uses the fitted critic. With
    ``fit_critic_first=True`` the critic is fitted first and both terms use it (the paper's
    Algorithm 1). With ``clip_bounds=(low, high)`` the replay stores clipped actions (the
    authors stored the sampled, unclipped ones). With ``reward_scale=c`` the replay stores
    c * r, so the critic learns c * Q, and A_bar and the analytic term divide it back by c
    (the authors' ``scale_reward``; their sweep on Humanoid and HalfCheetah tried 10 to 0.01).
    """

    def __init__(self, critic, replay, rule: str, updates_ratio: float = 1.0,
                 truncation_is_terminal: bool = False, fit_critic_first: bool = False,
                 clip_bounds: tuple[np.ndarray, np.ndarray] | None = None,
                 reward_scale: float = 1.0) -> None:
        if rule not in ETA_RULES:
            raise ValueError(f"unknown eta rule {rule!r}; valid: {', '.join(ETA_RULES)}")
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, not {reward_scale!r}")
        self.critic = critic
        self.replay = replay
        self.rule = rule
        self.updates_ratio = updates_ratio
        self.truncation_is_terminal = truncation_is_terminal
        self.fit_critic_first = fit_critic_first
        self.clip_bounds = clip_bounds
        self.reward_scale = float(reward_scale)
        self.prev_eta = 1.0
        self.divergence = DivergenceMonitor()

    def get_state(self) -> dict:
        """The critic's state, the replay's bookkeeping (``replay/...``; its rows are
        checkpointed a chunk at a time, see ReplayBuffer.take_journal) and the previous
        batch's eta* (``prev_eta``, the adaptive rule's fallback), the divergence monitor's
        history (``divergence/...``)."""
        return {**self.critic.get_state(), **prefixed("replay", self.replay.get_state()),
                "prev_eta": self.prev_eta,
                **prefixed("divergence", self.divergence.get_state())}

    def set_state(self, state: dict, replay_chunks) -> None:
        self.critic.set_state(state)
        self.replay.set_state(unprefixed("replay", state), replay_chunks)
        self.prev_eta = float(state["prev_eta"])
        self.divergence.set_state(unprefixed("divergence", state))

    def extra_loss(self, mean: tf.Tensor, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return qprop_analytic_loss(self.critic.qf.q, inputs["obs"], mean, inputs["eta"],
                                   self.reward_scale)

    def _fit(self, batch, policy) -> dict[str, float]:
        if self.clip_bounds is not None:
            # The critic then learns Q(s, clip(a)), the function the env actually applies.
            # A_bar still uses the sampled action: E_a[A_bar] = 0 needs the unclipped a.
            batch = dataclasses.replace(batch, act=np.clip(batch.act, *self.clip_bounds))
        if self.reward_scale != 1.0:
            batch = dataclasses.replace(batch, rew=batch.rew * self.reward_scale)
        self.replay.add_batch(batch, truncation_is_terminal=self.truncation_is_terminal)
        n_updates = int(np.ceil(self.updates_ratio * batch.n_steps))
        return self.critic.fit(self.replay, policy, n_updates)

    def process(self, batch, adv: np.ndarray, policy) -> tuple[np.ndarray, dict, QPropStats]:
        """Return (raw learning signal, extra optimiser inputs, diagnostics) for a batch."""
        t0 = time.perf_counter()
        fit_stats = self._fit(batch, policy) if self.fit_critic_first else None
        obs = tf.constant(batch.obs)
        _, dq = self.critic.q_and_grad(obs, tf.constant(batch.mean))
        dq_da = dq.numpy() if self.reward_scale == 1.0 else dq.numpy() / self.reward_scale
        a_bar = taylor_control_variate(dq_da, batch.act, batch.mean)
        path_ids = np.repeat(np.arange(batch.n_paths), batch.path_lengths)
        eta = compute_eta(self.rule, adv, a_bar, path_ids, self.prev_eta)
        if self.rule == "adaptive":
            self.prev_eta = eta_star(adv, a_bar)
        signal = qprop_learning_signal(adv, eta, a_bar)
        if fit_stats is None:
            fit_stats = self._fit(batch, policy)
        corr = (float(np.corrcoef(adv, a_bar)[0, 1])
                if np.std(adv) > 0 and np.std(a_bar) > 0 else float("nan"))
        diag = QPropStats(
            critic_loss=fit_stats["loss"],
            critic_mean_q=fit_stats["mean_q"],
            critic_updates=fit_stats["n_updates"],
            replay_size=int(self.replay.size),
            eta_mean=float(np.mean(eta)),
            eta_one_fraction=float(np.mean(eta == 1.0)),
            corr_adv_abar=corr,
            signal_var_before=float(np.var(adv)),
            signal_var_after=float(np.var(signal)),
            abar_std=float(np.std(a_bar)),
            critic_time=time.perf_counter() - t0,
            critic_oob_fraction=fit_stats["oob_fraction"],
            critic_max_abs_mu=fit_stats["max_abs_mu"],
            critic_target_mean_abs=fit_stats["target_mean_abs"],
            critic_target_max_abs=fit_stats["target_max_abs"],
            critic_target_oob_mean_abs=fit_stats["target_oob_mean_abs"],
            critic_target_oob_max_abs=fit_stats["target_oob_max_abs"],
            critic_grad_norm=fit_stats["grad_norm"],
            critic_grad_norm_max=fit_stats["grad_norm_max"],
            critic_diverged=int(self.divergence.update(fit_stats["loss"])),
        )
        return signal, {"eta": eta.astype(np.float32)}, diag
