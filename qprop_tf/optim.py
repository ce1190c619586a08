"""Pluggable policy optimisers: TRPO (natural gradient + line search) and VPG (one Adam step).

Both minimise the same loss,

    L(theta) = -mean_i[ pi_theta(a_i|s_i) / pi_old(a_i|s_i) * signal_i ] + extra(mu_theta(s))

where ``signal`` is the (standardised) advantage and ``extra`` is an optional differentiable
term supplied by the caller; Q-Prop passes its analytic critic term -mean(eta*Q_w(s, mu(s)))
through it. Each update is a single compiled ``tf.function`` call.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from qprop_tf.policy import GaussianMLPPolicy
from qprop_tf.state import assign_variables, variables_state

ExtraLoss = Callable[[tf.Tensor, dict[str, tf.Tensor]], tf.Tensor]
"""extra(mean_actions, inputs) -> scalar loss; gets gradient only through mean_actions."""


# ----------------------------------------------------------------------- flat parameters
def flatten(tensors: list[tf.Tensor]) -> tf.Tensor:
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def assign_flat(variables: list[tf.Variable], flat: tf.Tensor) -> None:
    sizes = [v.shape.num_elements() for v in variables]
    for v, part in zip(variables, tf.split(flat, sizes), strict=True):
        v.assign(tf.reshape(part, v.shape))


# ----------------------------------------------------------------------- the equations
def surrogate_loss(dist: object, old_logp: tf.Tensor, act: tf.Tensor, signal: tf.Tensor
                   ) -> tf.Tensor:
    """Importance-sampled policy-gradient surrogate (Schulman et al. 2015, eq. 14).

    L(theta) = -mean_i[ exp(log pi_theta(a_i|s_i) - log pi_old(a_i|s_i)) * signal_i ]
    Its gradient at theta = theta_old is -mean_i[ grad log pi(a_i|s_i) * signal_i ].
    """
    ratio = tf.exp(dist.log_prob(act) - old_logp)
    return -tf.reduce_mean(ratio * signal)


def analytic_step_share(grad: tf.Tensor, analytic_grad: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """The share of a step's first-order loss decrease that the extra (analytic) term makes.

    share = (g_Q . d) / (g . d),   g = grad L (the whole loss), g_Q = grad of the extra term,
    d = the step taken. 1: the step serves the critic's term alone; 0: the likelihood-ratio
    term alone; outside [0, 1]: the two terms pull against each other along d.
    """
    return tf.reduce_sum(analytic_grad * step) / tf.reduce_sum(grad * step)


def mean_kl(old_dist: object, new_dist: object) -> tf.Tensor:
    """Mean KL(pi_old(.|s) || pi_theta(.|s)) over the batch's states (tfp's closed form)."""
    return tf.reduce_mean(old_dist.kl_divergence(new_dist))


def fisher_vector_product(kl_fn: Callable[[], tf.Tensor], variables: list[tf.Variable],
                          v: tf.Tensor, damping: float) -> tf.Tensor:
    """Damped Fisher-vector product as the exact Hessian-vector product of the mean KL.

    F v = grad_theta[ (grad_theta KL(pi_old || pi_theta))^T v ] |_{theta=theta_old} + damping*v
    (KL's gradient vanishes at theta_old, so its Hessian there is the Fisher matrix.)
    """
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            kl = kl_fn()
        grad = flatten(inner.gradient(kl, variables))
        gv = tf.reduce_sum(grad * tf.stop_gradient(v))
    hv = flatten(outer.gradient(gv, variables))
    return hv + damping * v


def fisher_vector_product_fn(kl_fn: Callable[[], tf.Tensor], variables: list[tf.Variable],
                             damping: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """The same product as :func:`fisher_vector_product`, F v + damping*v, for many v.

    F v = d/dtheta [ (grad_theta KL)^T v ] = (d grad_theta KL / d theta)^T v: the KL's
    forward pass and first backward pass are recorded once on a persistent tape, and each
    product is one more backward pass with ``output_gradients=v``. Exact, not approximated:
    this only avoids recomputing the forward pass in every conjugate-gradient iteration.
    """
    sizes = [v.shape.num_elements() for v in variables]
    shapes = [v.shape for v in variables]
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            kl = kl_fn()
        grads = inner.gradient(kl, variables)

    def fvp(v: tf.Tensor) -> tf.Tensor:
        parts = [tf.reshape(p, s) for p, s in zip(tf.split(v, sizes), shapes, strict=True)]
        hv = outer.gradient(grads, variables, output_gradients=parts)
        return flatten(hv) + damping * v

    return fvp


def conjugate_gradient(f_ax: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor, iters: int = 10,
                       residual_tol: float = 1e-10) -> tf.Tensor:
    """Solve A x = b for symmetric positive-definite A given only x -> A x (rllab's cg).

    x_0 = 0, r_0 = p_0 = b;  alpha_k = r_k.r_k / p_k.A p_k;  x_{k+1} = x_k + alpha_k p_k;
    r_{k+1} = r_k - alpha_k A p_k;  p_{k+1} = r_{k+1} + (r_{k+1}.r_{k+1} / r_k.r_k) p_k;
    at most ``iters`` steps, stopping early once r.r < residual_tol.
    """
    x = tf.zeros_like(b)
    r = tf.identity(b)
    p = tf.identity(b)
    rdotr = tf.reduce_sum(r * r)
    for _ in tf.range(iters):
        if rdotr < residual_tol:
            break
        z = f_ax(p)
        alpha = rdotr / tf.reduce_sum(p * z)
        x = x + alpha * p
        r = r - alpha * z
        new_rdotr = tf.reduce_sum(r * r)
        p = r + (new_rdotr / rdotr) * p
        rdotr = new_rdotr
    return x


def backtracking_line_search(variables: list[tf.Variable], theta_old: tf.Tensor,
                             full_step: tf.Tensor, loss_fn: Callable[[], tf.Tensor],
                             kl_fn: Callable[[], tf.Tensor], loss_before: tf.Tensor,
                             max_kl: float, ratio: float = 0.8, max_backtracks: int = 15
                             ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """rllab's backtracking line search on the natural-gradient step.

    theta_k = theta_old - ratio^k * full_step,  k = 0 .. max_backtracks-1;
    accept the first theta_k with L(theta_k) < L(theta_old) and KL(theta_old||theta_k) <= max_kl,
    otherwise restore theta_old. Returns (accepted, k, loss, kl) at the kept parameters.
    """
    accepted = tf.constant(False)
    loss = loss_before
    kl = tf.constant(0.0, dtype=loss_before.dtype)
    k_used = tf.constant(max_backtracks)
    for k in tf.range(max_backtracks):
        assign_flat(variables, theta_old - tf.pow(tf.cast(ratio, theta_old.dtype),
                                                  tf.cast(k, theta_old.dtype)) * full_step)
        loss = loss_fn()
        kl = kl_fn()
        if tf.logical_and(loss < loss_before, kl <= max_kl):
            accepted = tf.constant(True)
            k_used = k
            break
    if not accepted:
        assign_flat(variables, theta_old)
        loss = loss_before
        kl = tf.constant(0.0, dtype=loss_before.dtype)
    return accepted, k_used, loss, kl


# ----------------------------------------------------------------------- optimisers
class _PolicyOptimizer:
    """Shared plumbing: the batch's old distribution, the loss and the KL as closures."""

    def __init__(self, policy: GaussianMLPPolicy, extra_loss: ExtraLoss | None = None) -> None:
        self.policy = policy
        self.extra_loss = extra_loss
        self.variables = list(policy.trainable_variables)
        self._update = None

    def get_state(self) -> dict[str, np.ndarray]:
        """The optimiser's own state (none for TRPO; Adam's slots for VPG)."""
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def update(self, inputs: dict[str, tf.Tensor]) -> dict[str, float]:
        """One policy update on ``inputs`` (obs, act, signal, plus whatever extra_loss reads).

        Compiled once, on the first call, with the batch dimension left open, so batches of
        any size reuse the same graph.
        """
        tensors = {k: tf.convert_to_tensor(v) for k, v in inputs.items()}
        if self._update is None:
            spec = {k: tf.TensorSpec([None, *t.shape[1:]], t.dtype) for k, t in tensors.items()}
            self._update = tf.function(self._update_impl, input_signature=[spec])
        stats = self._update(tensors)
        return {k: float(v) for k, v in stats.items()}

    def _closures(self, inputs: dict[str, tf.Tensor]):
        obs, act, signal = inputs["obs"], inputs["act"], inputs["signal"]
        policy = self.policy
        old_mean = tf.stop_gradient(policy(obs))
        old_log_std = tf.stop_gradient(tf.identity(policy.log_std))
        old_dist = policy.distribution(old_mean, old_log_std)
        old_logp = tf.stop_gradient(old_dist.log_prob(act))

        def loss_fn() -> tf.Tensor:
            mean = policy(obs)
            loss = surrogate_loss(policy.distribution(mean), old_logp, act, signal)
            if self.extra_loss is not None:
                loss = loss + self.extra_loss(mean, inputs)
            return loss

        def kl_fn() -> tf.Tensor:
            return mean_kl(old_dist, policy.distribution(policy(obs)))

        def entropy_fn() -> tf.Tensor:
            return tf.reduce_mean(policy.distribution(old_mean).entropy())

        return loss_fn, kl_fn, entropy_fn

    def _update_impl(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def _analytic_stats(self, inputs: dict[str, tf.Tensor], grad: tf.Tensor, step: tf.Tensor
                        ) -> dict[str, tf.Tensor]:
        """``analytic_grad_norm`` (|g_Q|) and ``analytic_step_share`` (see
        :func:`analytic_step_share`) at theta_old; NaN without an extra term. Diagnostics
        only: the step is computed from the whole loss's gradient, as before."""
        if self.extra_loss is None:
            nan = tf.constant(float("nan"))
            return {"analytic_grad_norm": nan, "analytic_step_share": nan}
        with tf.GradientTape() as tape:
            extra = self.extra_loss(self.policy(inputs["obs"]), inputs)
        grads = tape.gradient(extra, self.variables)  # log_std: None (mu only)
        g_q = flatten([tf.zeros_like(v) if g is None else g
                       for g, v in zip(grads, self.variables, strict=True)])
        return {"analytic_grad_norm": tf.norm(g_q),
                "analytic_step_share": analytic_step_share(grad, g_q, step)}


class TRPO(_PolicyOptimizer):
    """Trust-region policy optimisation with the authors' settings: max KL 0.01 (the launcher's
    step_size), CG 10 iterations with damping 1e-5, backtracking 0.8^k for at most 15 steps
    (rllabplusplus' ``sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py``).

    ``kl_scale`` multiplies the KL wherever the update uses it (the Fisher matrix of the
    natural-gradient step and the line search's bound): 1 is the true mean KL of the
    multivariate Gaussian (the authors, rllab); 1/act_dim is sb3-contrib's TRPO, which
    averages the per-dimension KL over the action dimensions and so bounds the true mean KL
    by act_dim * max_kl. The logged ``mean_kl`` is always the true one.
    """

    def __init__(self, policy: GaussianMLPPolicy, max_kl: float = 0.01, cg_iters: int = 10,
                 cg_damping: float = 1e-5, backtrack_ratio: float = 0.8,
                 max_backtracks: int = 15, extra_loss: ExtraLoss | None = None,
                 kl_scale: float = 1.0) -> None:
        self.kl_scale = kl_scale
        self.max_kl = max_kl
        self.cg_iters = cg_iters
        self.cg_damping = cg_damping
        self.backtrack_ratio = backtrack_ratio
        self.max_backtracks = max_backtracks
        super().__init__(policy, extra_loss)

    def _update_impl(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        loss_fn, true_kl_fn, entropy_fn = self._closures(inputs)
        if self.kl_scale == 1.0:
            kl_fn = true_kl_fn
        else:
            def kl_fn() -> tf.Tensor:
                return self.kl_scale * true_kl_fn()
        variables = self.variables
        with tf.GradientTape() as tape:
            loss_before = loss_fn()
        grad = flatten(tape.gradient(loss_before, variables))

        fvp = fisher_vector_product_fn(kl_fn, variables, self.cg_damping)
        direction = conjugate_gradient(fvp, grad, self.cg_iters)
        shs = tf.reduce_sum(direction * fvp(direction))
        step_size = tf.sqrt(2.0 * self.max_kl / (shs + 1e-8))
        full_step = step_size * direction
        analytic = self._analytic_stats(inputs, grad, full_step)  # at theta_old
        theta_old = flatten(variables)
        accepted, k, loss_after, kl = backtracking_line_search(
            variables, theta_old, full_step, loss_fn, kl_fn, loss_before, self.max_kl,
            self.backtrack_ratio, self.max_backtracks)
        return {"loss_before": loss_before, "loss_after": loss_after,
                "mean_kl": kl / self.kl_scale,
                "entropy": entropy_fn(), "grad_norm": tf.norm(grad),
                "accepted": tf.cast(accepted, tf.float32), "backtracks": tf.cast(k, tf.float32),
                **analytic}


class VPG(_PolicyOptimizer):
    """Vanilla policy gradient: one full-batch Adam step (lr 1e-3) on the same loss."""

    def __init__(self, policy: GaussianMLPPolicy, lr: float = 1e-3,
                 extra_loss: ExtraLoss | None = None) -> None:
        self.optimizer = keras.optimizers.Adam(lr)
        self.optimizer.build(policy.trainable_variables)
        super().__init__(policy, extra_loss)

    def get_state(self) -> dict[str, np.ndarray]:
        """Adam's step count and slots, ``"0"``, ``"1"``, ... in Keras' order."""
        return variables_state("", self.optimizer.variables)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        assign_variables("", self.optimizer.variables, state)

    def _update_impl(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        loss_fn, kl_fn, entropy_fn = self._closures(inputs)
        with tf.GradientTape() as tape:
            loss_before = loss_fn()
        grads = tape.gradient(loss_before, self.variables)
        flat = flatten(grads)
        analytic = self._analytic_stats(inputs, flat, -flat)  # along -g: Adam rescales it
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return {"loss_before": loss_before, "loss_after": loss_fn(), "mean_kl": kl_fn(),
                "entropy": entropy_fn(), "grad_norm": tf.linalg.global_norm(grads),
                "accepted": tf.constant(1.0), "backtracks": tf.constant(0.0), **analytic}
