"""The sb3-contrib side of ``reproduce.crosscheck``: one TRPO update and one GAE pass.

Run under the peer interpreter (.venv-peers); imports only torch, stable-baselines3,
sb3-contrib, gymnasium and NumPy (never TensorFlow or qprop_tf)::

    .venv-peers/bin/python -I reproduce/sb3_crosscheck.py IN.npz OUT.npz

IN.npz holds, per TRPO case ``<c>`` (listed in ``cases``), ``<c>__obs, act, adv, logp``,
the actor's parameters ``<c>__param_<i>`` in qprop_tf's order and layout (``names``; Keras
kernels are (in, out), torch weights (out, in)), a probe vector ``<c>__v`` (flat, our
layout) and the hyper-parameters; and ``gae__*`` for the GAE case. The update is sb3's own
``TRPO.train()`` on a hand-filled rollout buffer; its intermediate quantities are recorded
by wrapping (never changing) the functions ``train()`` calls: ``conjugate_gradient_solver``
(its right-hand side is the surrogate gradient; F v and the direction are taken there with
sb3's own Hessian-vector product) and ``kl_divergence`` (one call before the line search,
then one per line-search trial). OUT.npz returns every vector flat in our layout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import sb3_contrib.common.utils as sb3c_utils  # noqa: E402
import sb3_contrib.trpo.trpo as trpo_module  # noqa: E402
import torch as th  # noqa: E402
from sb3_contrib import TRPO  # noqa: E402
from stable_baselines3.common.buffers import RolloutBuffer  # noqa: E402
from stable_baselines3.common.logger import Logger  # noqa: E402

# qprop_tf variable name -> sb3 ActorCriticPolicy parameter name
SB3_NAMES = {
    "log_std": "log_std",
    "h0/kernel": "mlp_extractor.policy_net.0.weight", "h0/bias": "mlp_extractor.policy_net.0.bias",
    "h1/kernel": "mlp_extractor.policy_net.2.weight", "h1/bias": "mlp_extractor.policy_net.2.bias",
    "h2/kernel": "mlp_extractor.policy_net.4.weight", "h2/bias": "mlp_extractor.policy_net.4.bias",
    "mean/kernel": "action_net.weight", "mean/bias": "action_net.bias",
}

Params = list[tuple[str, th.nn.Parameter]]


def actor_params(model: TRPO) -> Params:
    """The parameters ``TRPO._compute_actor_grad`` steps (names without "value"), in order."""
    return [(n, p) for n, p in model.policy.named_parameters() if "value" not in n]


def to_ours(flat: th.Tensor, params: Params, names: list[str]) -> np.ndarray:
    """A flat vector in sb3's actor_params order -> flat in qprop_tf's order and layout."""
    parts: dict[str, np.ndarray] = {}
    start = 0
    for n, p in params:
        parts[n] = flat[start:start + p.numel()].detach().reshape(p.shape).numpy()
        start += p.numel()
    out = [parts[SB3_NAMES[c]] for c in names]
    return np.concatenate([(a.T if a.ndim == 2 else a).ravel() for a in out]).astype(np.float64)


def from_ours(vec: np.ndarray, params: Params, names: list[str]) -> th.Tensor:
    """Inverse of :func:`to_ours`."""
    shapes = dict(params)
    parts: dict[str, th.Tensor] = {}
    start = 0
    for c in names:
        shape = tuple(shapes[SB3_NAMES[c]].shape)
        ours_shape = shape[::-1] if len(shape) == 2 else shape
        k = int(np.prod(shape))
        a = vec[start:start + k].reshape(ours_shape)
        parts[SB3_NAMES[c]] = th.as_tensor((a.T if a.ndim == 2 else a).copy(), dtype=th.float32)
        start += k
    return th.cat([parts[n].reshape(-1) for n, _ in params])


class _ZeroInitTorch:
    """Stands in for ``torch`` inside sb3_contrib.common.utils: ``randn_like`` -> zeros, so
    the solver starts at x_0 = 0 (as rllab's and ours do) instead of 1e-4 * N(0, 1)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(th, name)

    @staticmethod
    def randn_like(t: th.Tensor) -> th.Tensor:
        return th.zeros_like(t)


def run_trpo(d: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """One ``TRPO.train()`` call on the given batch; returns the recorded quantities."""
    obs, act = d["obs"], d["act"]
    n = len(obs)
    model = TRPO("MlpPolicy", gym.make("Hopper-v5"), n_steps=n, batch_size=n,
                 target_kl=float(d["max_kl"]), cg_max_steps=int(d["cg_iters"]),
                 cg_damping=float(d["damping"]),
                 line_search_shrinking_factor=float(d["ratio"]),
                 line_search_max_iter=int(d["max_backtracks"]), n_critic_updates=0,
                 normalize_advantage=False, seed=int(d["seed"]), device="cpu",
                 policy_kwargs=dict(net_arch=dict(pi=[100, 50, 25], vf=[64, 64]),
                                    activation_fn=th.nn.Tanh))
    model.set_logger(Logger(None, []))
    params = actor_params(model)
    named = dict(params)
    assert sorted(named) == sorted(SB3_NAMES.values()), sorted(named)
    with th.no_grad():
        for i, c in enumerate(names):
            a = d[f"param_{i}"]
            named[SB3_NAMES[c]].copy_(th.as_tensor(a.T if a.ndim == 2 else a))
    theta0 = to_ours(th.cat([p.detach().reshape(-1) for _, p in params]), params, names)

    buf = model.rollout_buffer
    buf.reset()
    buf.observations[:] = obs[:, None, :]
    buf.actions[:] = act[:, None, :]
    buf.advantages[:] = d["adv"][:, None]
    buf.returns[:] = d["adv"][:, None]
    buf.log_probs[:] = d["logp"][:, None]
    buf.values[:] = 0.0
    buf.episode_starts[:] = 0.0
    buf.full, buf.pos = True, n

    rec: dict[str, np.ndarray] = {}
    kls: list[float] = []
    v = from_ours(d["v"], params, names)
    solver, kl_divergence = trpo_module.conjugate_gradient_solver, trpo_module.kl_divergence

    def cg(fn: Callable[[th.Tensor], th.Tensor], b: th.Tensor, max_iter: int = 10,
           residual_tol: float = 1e-10) -> th.Tensor:
        rec["grad"] = to_ours(b, params, names)
        rec["fvp"] = to_ours(fn(v), params, names)
        sb3c_utils.th = _ZeroInitTorch()  # type: ignore[assignment]
        try:
            x0 = solver(fn, b, max_iter=max_iter, residual_tol=residual_tol)
        finally:
            sb3c_utils.th = th
        rec["dir_x0zero"] = to_ours(x0, params, names)
        rec["shs_x0zero"] = np.float64(th.dot(x0, fn(x0)).item())
        x = solver(fn, b, max_iter=max_iter, residual_tol=residual_tol)  # sb3 as shipped
        rec["dir"] = to_ours(x, params, names)
        rec["shs"] = np.float64(th.dot(x, fn(x)).item())
        return x

    def kl(p: Any, q: Any) -> th.Tensor:
        out = kl_divergence(p, q)
        kls.append(float(out.mean()))
        return out

    trpo_module.conjugate_gradient_solver, trpo_module.kl_divergence = cg, kl
    try:
        model.train()
    finally:
        trpo_module.conjugate_gradient_solver, trpo_module.kl_divergence = solver, kl_divergence
    log = model.logger.name_to_value
    success = bool(log["train/is_line_search_success"] > 0.5)
    trials = len(kls) - 1
    rec.update(
        theta0=theta0,
        theta=to_ours(th.cat([p.detach().reshape(-1) for _, p in params]), params, names),
        step_size=np.float64(np.sqrt(2 * float(d["max_kl"]) / rec["shs"])),
        step_size_x0zero=np.float64(np.sqrt(2 * float(d["max_kl"]) / rec["shs_x0zero"])),
        accepted=np.float64(success),
        backtracks=np.float64(trials - 1 if success else int(d["max_backtracks"])),
        kl_reported=np.float64(log["train/kl_divergence_loss"]),  # KL(new || old)
        kl_trials=np.array(kls[1:], dtype=np.float64))
    return rec


def run_gae(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``RolloutBuffer.compute_returns_and_advantage`` on one env's trajectory."""
    t = len(d["rewards"])
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    buf = RolloutBuffer(t, box, box, device="cpu", gae_lambda=float(d["lam"]),
                        gamma=float(d["gamma"]), n_envs=1)
    buf.rewards[:, 0] = d["rewards"]
    buf.values[:, 0] = d["values"]
    buf.episode_starts[:, 0] = d["episode_starts"]
    buf.compute_returns_and_advantage(th.tensor([float(d["last_value"])]),
                                      np.array([bool(d["done"])]))
    return {"adv": buf.advantages[:, 0].astype(np.float64),
            "ret": buf.returns[:, 0].astype(np.float64)}


def _subdict(data: Any, prefix: str) -> dict[str, np.ndarray]:
    p = prefix + "__"
    return {k[len(p):]: data[k] for k in data.files if k.startswith(p)}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: sb3_crosscheck.py IN.npz OUT.npz")
    th.set_num_threads(1)
    data = np.load(argv[0])
    names = [str(s) for s in data["names"]]
    out: dict[str, np.ndarray] = {}
    for case in [str(c) for c in data["cases"]]:
        for k, val in run_trpo(_subdict(data, case), names).items():
            out[f"{case}__{k}"] = val
    for k, val in run_gae(_subdict(data, "gae")).items():
        out[f"gae__{k}"] = val
    np.savez(argv[1], **out)


if __name__ == "__main__":
    main(sys.argv[1:])
