"""Cross-check our TRPO update and GAE against sb3-contrib's, on identical inputs.

    python -m reproduce.crosscheck [--peer-python .venv-peers/bin/python] \
        [--out results/crosscheck.md]

Case A: a seeded 11-100-50-25-3 tanh Gaussian policy, N = 2000 random states, sampled actions,
standardised random advantages. Ours: ``optim``'s functions (eager), then ``TRPO.update``; sb3:
``reproduce/sb3_crosscheck.py`` runs ``TRPO.train()`` in the peer venv. Ours runs at sb3's
settings (delta, damping l), then "matched" at (d delta, d l), d = act_dim: sb3's KL is a mean
over action dimensions (per-dimension ``Normal``, then ``.mean()``), KL/d, so it solves
(F/d + l I) s = g, s = d (F + d l I)^-1 g, and its step sqrt(2 delta / s'(F/d + l I)s) s is
ours at (d delta, d l) exactly (matched rows compare ours' F v / d, d s, step / d). Case B: GAE
and lambda-returns on a trajectory with terminations, a truncation and a final cut.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from qprop_tf import advantages, optim  # noqa: E402
from qprop_tf.policy import GaussianMLPPolicy  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = REPO_ROOT / "reproduce" / "sb3_crosscheck.py"
OBS_DIM, ACT_DIM, HIDDEN, N = 11, 3, (100, 50, 25), 2000
HYPER = {"cg_iters": 10, "ratio": 0.8, "max_backtracks": 10}
CASES = {  # name: (log_std, max_kl, damping); A3 forces backtracking
    "A1 log_std=0": ((0.0, 0.0, 0.0), 0.01, 0.1),
    "A2 log_std=[-.3,.1,-.5]": ((-0.3, 0.1, -0.5), 0.01, 0.1),
    "A3 delta=1 damping=1e-3": ((0.0, 0.0, 0.0), 1.0, 1e-3)}
GAMMA, LAM, T = 0.99, 0.97, 3000
TOLERANCES = """Tolerances (float32, eps 1.2e-7; rel = max|ours - sb3| / max|sb3|): rtol 1e-4
on grad J and F v (means of N float32 terms summed in another order - sb3 shuffles - agree to
~1e-6; a wrong factor, sign or term gives >= 1e-2); 1e-3 on the CG direction, step size, step
and theta_new (10 CG iterations amplify round-off by up to cond(F + l I)); 1e-5 on GAE (float32
recursions, ~25-step horizon); backtracks exact. sb3's shipped CG starts at x0 = 1e-4 N(0, 1):
INFO row; the x0 = 0 rows run sb3's own solver with randn_like -> 0 (our x0)."""


@dataclass
class Row:
    case: str
    quantity: str
    abs_diff: float
    rel_diff: float
    rtol: float | None  # None: informational only

    @property
    def status(self) -> str:
        if self.rtol is None:
            return "INFO"
        ok = self.rel_diff <= self.rtol if self.rtol > 0 else self.abs_diff == 0
        return "PASS" if ok else "FAIL"


def compare(case: str, quantity: str, ours: object, ref: object, rtol: float | None) -> Row:
    """max |ours - ref| and that divided by max |ref| (the usual relative error for scalars)."""
    a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    diff, scale = float(np.max(np.abs(a - b))), float(np.max(np.abs(b)))
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)  # NaN -> FAIL
    return Row(case, quantity, diff, rel, rtol)


# ----------------------------------------------------------------------- case A: our side
def build_policy(log_std: tuple[float, ...], seed: int) -> GaussianMLPPolicy:
    """Our policy, weights drawn from ``seed``: N(0, 0.1^2) biases, so they matter too."""
    policy = GaussianMLPPolicy(OBS_DIM, ACT_DIM, HIDDEN, init_std=1.0)
    rng = np.random.default_rng(seed)
    for layer in [*policy.hidden_layers, policy.mean_layer]:
        fan_in, fan_out = layer.kernel.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot-uniform
        layer.kernel.assign(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        layer.bias.assign((0.1 * rng.standard_normal(fan_out)).astype(np.float32))
    policy.log_std.assign(np.asarray(log_std, np.float32))
    return policy


def numpy_mean(params: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """mu(s) in float64 NumPy from exported weights (kernels (in, out))."""
    h = np.asarray(obs, np.float64)
    for i in range(len(HIDDEN)):
        h = np.tanh(h @ params[f"h{i}/kernel"] + params[f"h{i}/bias"])
    return h @ params["mean/kernel"] + params["mean/bias"]


def unflatten(flat: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    parts = np.split(np.asarray(flat, np.float64), np.cumsum([a.size for a in like.values()]))
    return {k: p.reshape(a.shape) for (k, a), p in zip(like.items(), parts, strict=False)}


def gauss_kl(mu_p: np.ndarray, ls_p: np.ndarray, mu_q: np.ndarray, ls_q: np.ndarray) -> float:
    """Mean over states of KL(N(mu_p, e^2ls_p) || N(mu_q, e^2ls_q)), diagonal, float64."""
    per_dim = ls_q - ls_p + (np.exp(2 * ls_p) + (mu_p - mu_q) ** 2) / (2 * np.exp(2 * ls_q)) - 0.5
    return float(np.mean(np.sum(per_dim, axis=-1)))


def make_trpo_case(log_std: tuple[float, ...], seed: int, n: int = N
                   ) -> tuple[GaussianMLPPolicy, dict[str, np.ndarray]]:
    """The policy and the batch (obs, act, signal, logp) plus the probe vector v."""
    policy = build_policy(log_std, seed)
    rng = np.random.default_rng(seed + 1000)
    obs = rng.standard_normal((n, OBS_DIM)).astype(np.float32)
    noise = np.exp(np.asarray(log_std)) * rng.standard_normal((n, ACT_DIM))
    act = (policy(tf.constant(obs)).numpy() + noise).astype(np.float32)
    signal = advantages.standardize(rng.standard_normal(n), eps=0.0).astype(np.float32)
    dist = policy.distribution(policy(tf.constant(obs)))
    logp = dist.log_prob(tf.constant(act)).numpy().astype(np.float32)
    n_params = sum(int(v.shape.num_elements()) for v in policy.trainable_variables)
    v = rng.standard_normal(n_params).astype(np.float32)
    return policy, {"obs": obs, "act": act, "signal": signal, "logp": logp, "v": v}


def run_ours(policy: GaussianMLPPolicy, batch: dict[str, np.ndarray], max_kl: float,
             damping: float) -> dict[str, np.ndarray]:
    """Our pieces (eager; objective = -loss), then update(); restores the parameters."""
    obs, act, signal = (tf.constant(batch[k]) for k in ("obs", "act", "signal"))
    variables = list(policy.trainable_variables)
    old_dist = policy.distribution(tf.stop_gradient(policy(obs)), tf.identity(policy.log_std))
    old_logp = tf.stop_gradient(old_dist.log_prob(act))

    def kl_fn() -> tf.Tensor:
        return optim.mean_kl(old_dist, policy.distribution(policy(obs)))

    with tf.GradientTape() as tape:
        loss = optim.surrogate_loss(policy.distribution(policy(obs)), old_logp, act, signal)
    grad = optim.flatten(tape.gradient(loss, variables))
    fvp = optim.fisher_vector_product_fn(kl_fn, variables, damping)
    direction = optim.conjugate_gradient(fvp, grad, HYPER["cg_iters"])
    shs = tf.reduce_sum(direction * fvp(direction))
    step_size = tf.sqrt(2.0 * max_kl / (shs + 1e-8))
    out = {"grad": -grad.numpy(), "fvp": fvp(tf.constant(batch["v"])).numpy(),
           "dir": -direction.numpy(), "step_size": step_size.numpy(),
           "theta0": optim.flatten(variables).numpy()}
    trpo = optim.TRPO(policy, max_kl=max_kl, cg_iters=HYPER["cg_iters"], cg_damping=damping,
                      backtrack_ratio=HYPER["ratio"], max_backtracks=HYPER["max_backtracks"])
    stats = trpo.update({"obs": obs, "act": act, "signal": signal})
    out["theta"] = optim.flatten(variables).numpy()
    optim.assign_flat(variables, tf.constant(out["theta0"]))
    out.update(accepted=stats["accepted"], backtracks=stats["backtracks"],
               kl_reported=stats["mean_kl"])  # KL(old || new)
    return {k: np.asarray(val, np.float64) for k, val in out.items()}


def run_switch(policy: GaussianMLPPolicy, batch: dict[str, np.ndarray], max_kl: float,
               damping: float) -> dict[str, np.ndarray]:
    """Our TRPO.update with ``kl_per_action_dim`` (kl_scale = 1/act_dim) at sb3's nominal
    settings; restores the parameters."""
    variables = list(policy.trainable_variables)
    theta0 = optim.flatten(variables).numpy()
    trpo = optim.TRPO(policy, max_kl=max_kl, cg_iters=HYPER["cg_iters"], cg_damping=damping,
                      backtrack_ratio=HYPER["ratio"], max_backtracks=HYPER["max_backtracks"],
                      kl_scale=1.0 / ACT_DIM)
    stats = trpo.update({k: tf.constant(batch[k]) for k in ("obs", "act", "signal")})
    theta = optim.flatten(variables).numpy()
    optim.assign_flat(variables, tf.constant(theta0))
    return {"theta": theta.astype(np.float64), "backtracks": np.float64(stats["backtracks"])}


# ----------------------------------------------------------------------- case B: GAE
def make_gae_case(seed: int = 7) -> dict[str, np.ndarray]:
    """One env's 3000 steps: 7 terminated episodes, 1 time-limit truncation, a final cut;
    ``gae__*``: sb3's inputs (its buffer's arrays, the last value and ``dones``)."""
    rng = np.random.default_rng(seed)
    bounds = np.sort(rng.choice(np.arange(100, T - 100), size=8, replace=False))
    lengths = np.diff(np.concatenate([[0], bounds, [T]]))
    n_paths = len(lengths)
    truncated, cut = np.arange(n_paths) == 2, np.arange(n_paths) == n_paths - 1
    terminated, f32 = ~truncated & ~cut, np.float32
    rewards = rng.standard_normal(T).astype(f32)
    values = (5 * rng.standard_normal(T)).astype(f32)
    last_values = (5 * rng.standard_normal(n_paths)).astype(f32)  # V(s_T) after each path
    starts = np.isin(np.arange(T), [0, *bounds]).astype(f32)
    # sb3's collect_rollouts folds a truncation's bootstrap into the reward: r += gamma V(s_T)
    rewards_sb3 = rewards.copy()
    rewards_sb3[bounds[2] - 1] = f32(rewards[bounds[2] - 1] + f32(GAMMA) * last_values[2])
    return {"rewards": rewards, "values": values, "lengths": lengths, "last_values": last_values,
            "terminated": terminated, "truncated": truncated, "cut": cut,
            "gae__rewards": rewards_sb3, "gae__values": values, "gae__episode_starts": starts,
            "gae__last_value": last_values[-1], "gae__done": np.bool_(False),
            "gae__gamma": np.float64(GAMMA), "gae__lam": np.float64(LAM)}


def run_ours_gae(g: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ours: per-path GAE with V_end from path_end_values, then lambda-returns A + V."""
    end = advantages.path_end_values(g["last_values"].astype(np.float64), g["terminated"],
                                     g["truncated"], bootstrap_truncation=True, path_cut=g["cut"])
    values, rewards = g["values"].astype(np.float64), g["rewards"].astype(np.float64)
    adv = advantages.gae_advantages(rewards, values, end, g["lengths"], GAMMA, LAM)
    return {"adv": adv, "ret": advantages.lambda_returns(adv, values)}


# ----------------------------------------------------------------------- driver and report
def run_peer(peer_python: str, payload: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="crosscheck_") as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, **payload)
        proc = subprocess.run([peer_python, "-I", str(PEER_SCRIPT), str(inp), str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"peer failed with exit code {proc.returncode}")
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


def case_rows(case: str, ours: dict[str, np.ndarray], sb3: dict[str, np.ndarray],
              params: dict[str, np.ndarray], obs: np.ndarray, d: int
              ) -> tuple[list[Row], str]:
    """Rows for one variant; ``d`` rescales ours' F v, s and step to sb3's KL/d convention.

    At d = 1 (same nominal settings) the two differ by design (the KL convention), so those
    rows are INFO, not checks; the shared gradient and our own consistency are still checked.
    """
    gate = d != 1

    def row(quantity: str, a: object, b: object, rtol: float | None) -> Row:
        keep = gate or quantity.startswith(("theta_old", "surrogate", "ours:"))
        checked = rtol if keep else None
        return compare(case, quantity, a, b, checked)

    rows = [row("theta_old (copied weights)", ours["theta0"], sb3["theta0"], 0.0),
            row("surrogate gradient grad J", ours["grad"], sb3["grad"], 1e-4)] if d == 1 else []
    rows += [row("Fisher-vector product (F + damping I) v", ours["fvp"] / d, sb3["fvp"], 1e-4),
             row("CG direction s (sb3 solver, x0 = 0)", ours["dir"] * d, sb3["dir_x0zero"], 1e-3),
             row("CG direction s (sb3 as shipped)", ours["dir"] * d, sb3["dir"], None),
             row("max step sqrt(2 delta / s'Fs)", ours["step_size"] / d,
                 sb3["step_size_x0zero"], 1e-3),
             row("backtracks k", ours["backtracks"], sb3["backtracks"], 0.0),
             row("step theta_new - theta_old", ours["theta"] - ours["theta0"],
                 sb3["theta"] - sb3["theta0"], 1e-3),
             row("final parameters theta_new", ours["theta"], sb3["theta"], 1e-3)]
    k = float(ours["backtracks"])
    expected = ours["theta0"] + HYPER["ratio"] ** k * ours["step_size"] * ours["dir"]
    rows.append(row("ours: update() vs eager pieces", ours["theta"],
                    expected if ours["accepted"] > 0.5 else ours["theta0"], 1e-3))
    mu0, ls0, kls = numpy_mean(params, obs), params["log_std"], {}
    for side, res in (("ours", ours), ("sb3", sb3)):
        new = unflatten(res["theta"], params)
        mu1, ls1 = numpy_mean(new, obs), new["log_std"]
        kls[side] = gauss_kl(mu0, ls0, mu1, ls1), gauss_kl(mu1, ls1, mu0, ls0)
    rows += [row("KL(old||new) at theta_new", kls["ours"][0], kls["sb3"][0], 1e-3),
             row("KL(new||old) at theta_new", kls["ours"][1], kls["sb3"][1], 1e-3)]
    note = (f"- {case}: ours accepted={bool(ours['accepted'])} k={k:.0f} step "
            f"{ours['step_size']:.6g}, its KL(old||new)={ours['kl_reported']:.6g}; sb3 accepted="
            f"{bool(sb3['accepted'])} k={sb3['backtracks']:.0f} step {sb3['step_size']:.6g}, its "
            f"KL(new||old)/{ACT_DIM}={sb3['kl_reported']:.6g} (trials "
            f"{np.round(sb3['kl_trials'], 6).tolist()}). Float64 KL(old||new), KL(new||old) at "
            f"theta_new: ours {kls['ours'][0]:.6g}, {kls['ours'][1]:.6g}; sb3 {kls['sb3'][0]:.6g}, "
            f"{kls['sb3'][1]:.6g}.")
    return rows, note


def header(args: argparse.Namespace) -> str:
    """The command, date, commit and both sides' versions."""
    from datetime import UTC, datetime

    from qprop_tf.runtime import git_commit, versions

    peer = subprocess.run([args.peer_python, "-I", "-c", "import torch, sb3_contrib, "
                           "stable_baselines3 as s; print(torch.__version__, s.__version__, "
                           "sb3_contrib.__version__)"], capture_output=True, text=True)
    torch_v, sb3_v, contrib_v = (peer.stdout.split() + ["?", "?", "?"])[:3]
    ours = ", ".join(f"{k} {v}" for k, v in versions().items())
    return (f"Command: `python -m reproduce.crosscheck --peer-python {args.peer_python}` "
            f"(`make crosscheck`). Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit "
            f"{git_commit()}.\n\nOurs: {ours}. Peer: torch {torch_v}, stable-baselines3 {sb3_v}, "
            f"sb3-contrib {contrib_v}.")


def render(rows: list[Row], notes: list[str], head: str = "") -> str:
    lines = ["# Cross-check: qprop_tf vs sb3-contrib TRPO and GAE", "", head, "",
             "Rows *nominal*: both at sb3's settings (delta 0.01, damping 0.1); they differ by "
             "design, because sb3-contrib's KL is averaged over the action dimensions (INFO, "
             "not checked). Rows *matched x3*: ours at (3 delta, 3 damping), the equivalent "
             "settings. Rows *kl_per_action_dim=true*: our switch that adopts sb3's convention, "
             "at sb3's nominal settings.", "",
             "| case | quantity | max abs diff | max rel diff | rtol | result |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        tol = "-" if r.rtol is None else ("exact" if r.rtol == 0 else f"{r.rtol:g}")
        lines.append(f"| {r.case} | {r.quantity} | {r.abs_diff:.3e} | {r.rel_diff:.3e} | {tol} "
                     f"| {r.status} |")
    fails = sum(r.status == "FAIL" for r in rows)
    lines += ["", *notes, "", TOLERANCES, "",
              f"**{'ALL PASS' if fails == 0 else f'{fails} FAIL'}** ({len(rows)} rows)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Cross-check TRPO and GAE against sb3-contrib.")
    p.add_argument("--peer-python", default=str(REPO_ROOT / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "crosscheck.md"))
    args = p.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    payload: dict[str, np.ndarray] = {"cases": np.array([f"c{i}" for i in range(len(CASES))])}
    ours_all, inputs, switch = {}, {}, {}
    for i, (case, (log_std, max_kl, damping)) in enumerate(CASES.items()):
        policy, batch = make_trpo_case(log_std, seed=10 + i)
        params = {v.path.removeprefix(policy.name + "/"): v.numpy()
                  for v in policy.trainable_variables}
        payload["names"] = np.array(list(params))
        hyper = {**HYPER, "max_kl": max_kl, "damping": damping, "seed": i}
        case_in = {**{f"param_{j}": a for j, a in enumerate(params.values())},
                   **{k: np.float64(val) for k, val in hyper.items()}, "adv": batch["signal"],
                   **{k: batch[k] for k in ("obs", "act", "logp", "v")}}
        payload.update({f"c{i}__{k}": val for k, val in case_in.items()})
        inputs[case] = (params, batch["obs"])
        ours_all[case] = {d: run_ours(policy, batch, d * max_kl, d * damping)
                          for d in (1, ACT_DIM)}
        switch[case] = run_switch(policy, batch, max_kl, damping)
    g = make_gae_case()
    payload.update({k: v for k, v in g.items() if k.startswith("gae__")})
    sb3 = run_peer(args.peer_python, payload)
    rows, notes = [], []
    for i, case in enumerate(CASES):
        theirs = {k.split("__", 1)[1]: v for k, v in sb3.items() if k.startswith(f"c{i}__")}
        for d, label in ((1, "nominal"), (ACT_DIM, f"matched x{ACT_DIM}")):
            r, n = case_rows(f"{case} {label}", ours_all[case][d], theirs, *inputs[case], d)
            rows += r
            notes.append(n)
        label = f"{case} kl_per_action_dim=true"
        rows += [compare(label, "backtracks k", switch[case]["backtracks"], theirs["backtracks"],
                         0.0),
                 compare(label, "final parameters theta_new", switch[case]["theta"],
                         theirs["theta"], 1e-3)]
    ours_gae = run_ours_gae(g)
    rows += [compare("B GAE", q, ours_gae[k], sb3[f"gae__{k}"], 1e-5)
             for k, q in (("adv", "advantages A_t"), ("ret", "lambda-returns A_t + V_t"))]
    notes.append(f"- B GAE: T={T}, path lengths {g['lengths'].tolist()} (path 3 truncated, "
                 f"the last cut, the others terminated), gamma={GAMMA}, lambda={LAM}.")
    print(report := render(rows, notes, header(args)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    return int(any(r.status == "FAIL" for r in rows))


if __name__ == "__main__":
    sys.exit(main())
