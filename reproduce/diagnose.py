"""How good is Q-Prop's control variate? Compare it with the true effect of the action.

    python -m reproduce.diagnose --env Hopper --algo qprop-c --seed 0 --iterations 120 \
        --every 30 --states 64 --replicates 8 --horizon 300

Trains Q-Prop with the iteration of training itself (``OnPolicyRunner.iterate``, as
``qprop_tf.run.train`` calls it; the same config resolution as the sweep), and
at every ``--every``-th iteration takes ``--states`` random steps (s_i, a_i) of that
iteration's own batch and measures, by branching the MuJoCo simulator from s_i with common
random numbers (CRN),

    D_i = Q^pi(s_i, a_i) - Q^pi(s_i, mu(s_i))
        ~ (1/M) sum_m [ G_m(s_i, a_i) - G_m(s_i, mu(s_i)) ]

where both branches of replicate m take their first action (a_i or mu(s_i)) and then follow
pi with the *same* noise sequence for ``--horizon`` steps (return discounted by gamma,
0 after termination). D is the action-dependent part of the true advantage: the signal the
critic's Taylor term A_bar_i = grad_a Q_w(s_i, mu_i) . (a_i - mu_i) tries to predict, and
the part of the GAE advantage A_hat_i that carries information about a_i.

Printed and written (``<out>/cv_<Domain>_<algo>_seed<k>.csv``) per diagnosed iteration:
corr(A_hat, A_bar) over the whole batch (the number the training log shows),
corr(D, A_hat) (how much of A_hat is action signal at all: the ceiling for any control
variate), corr(D, A_bar) and corr(D, Q_w(s,a) - Q_w(s,mu)) (does the critic know the
action's effect), std ratios, and the replicate noise of D.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def corr(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation (robust to the heavy tails a fall in Hopper/Walker gives D)."""
    from scipy.stats import spearmanr

    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


class StateRecorder:
    """Wraps a MuJoCo gymnasium env and records (qpos, qvel) before every ``step``."""

    def __init__(self, env) -> None:
        import gymnasium as gym

        base = env.unwrapped
        if not hasattr(base, "set_state") or not hasattr(base, "data"):
            from qprop_tf.errors import ConfigError

            raise ConfigError(f"{env.spec.id if env.spec else env}: the CRN oracle needs a "
                              f"MuJoCo env (set_state); use one of the paper's domains")
        self.env = env
        self.base = base
        self.unwrapped = base
        self.states: list[tuple[np.ndarray, np.ndarray]] = []
        self.action_space = env.action_space
        self.observation_space = env.observation_space
        assert isinstance(env, gym.Env)

    def reset(self, **kw):
        return self.env.reset(**kw)

    def step(self, action):
        self.states.append((self.base.data.qpos.copy(), self.base.data.qvel.copy()))
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()


def crn_action_effects(env_id: str, policy, states: list[tuple[np.ndarray, np.ndarray]],
                       first_a: np.ndarray, first_b: np.ndarray, gamma: float, horizon: int,
                       replicates: int, rng: np.random.Generator, action_scale: str = "env"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Common-random-number estimate of Q^pi(s_i, a_i) - Q^pi(s_i, b_i) for every state.

    D_i = (1/M) sum_m [ G_m(s_i, a_i) - G_m(s_i, b_i) ],
    G_m(s, x) = sum_{h<H} gamma^h r_h  (first action x, then a_h = mu(o_h) + std * eps_{m,h},
                                       actions clipped to the bounds, 0 after termination).
    Both branches of a replicate use the same eps_m, so D_i is exactly 0 when a_i = b_i.
    Actions are in the policy's space (``action_scale``, as the run's ``Config``): with
    ``"unit"`` they are clipped to [-1, 1] and mapped onto the env's bounds by Gymnasium's
    ``RescaleAction``, as in training (``qprop_tf.envs.make_env``).
    Returns (D [N], standard error of D [N]).
    """
    import gymnasium as gym

    from qprop_tf.envs import check_action_scale, in_action_units

    check_action_scale(action_scale)
    n_env = 2 * replicates
    bases = [gym.make(env_id, disable_env_checker=True).unwrapped for _ in range(n_env)]
    envs = [in_action_units(b, action_scale) for b in bases]
    for e in envs:
        e.reset(seed=0)
    low = envs[0].action_space.low.astype(np.float64)
    high = envs[0].action_space.high.astype(np.float64)
    act_dim = low.shape[0]
    d_mean = np.zeros(len(states))
    d_se = np.zeros(len(states))
    try:
        for i, (qpos, qvel) in enumerate(states):
            eps = rng.standard_normal((replicates, horizon, act_dim))
            eps = np.concatenate([eps, eps])  # branch a: rows 0..M-1, branch b: M..2M-1
            firsts = np.concatenate([np.repeat(first_a[i][None], replicates, 0),
                                     np.repeat(first_b[i][None], replicates, 0)])
            ret = np.zeros(n_env)
            alive = np.ones(n_env, dtype=bool)
            obs = np.zeros((n_env, envs[0].observation_space.shape[0]))
            for b in bases:
                b.set_state(qpos, qvel)
            disc = 1.0
            for h in range(horizon):
                if h == 0:
                    act = firsts
                else:
                    act = policy.mean(obs) + policy.std * eps[:, h]
                act = np.clip(act, low, high)
                for k, e in enumerate(envs):
                    if not alive[k]:
                        continue
                    o, r, term, _, _ = e.step(act[k])
                    ret[k] += disc * r
                    obs[k] = o
                    if term:
                        alive[k] = False
                disc *= gamma
                if not alive.any():
                    break
            diff = ret[:replicates] - ret[replicates:]
            d_mean[i] = diff.mean()
            d_se[i] = diff.std(ddof=1) / np.sqrt(replicates) if replicates > 1 else np.nan
    finally:
        for e in envs:
            e.close()
    return d_mean, d_se


def diagnose(env: str, algo: str, seed: int, iterations: int, every: int, states: int,
             replicates: int, horizon: int, out: Path, overrides: list[str] | None = None,
             verbose: bool = True, tag: str = "") -> Path:
    """Train ``iterations`` iterations, diagnosing every ``every``-th; return the CSV path."""
    import pandas as pd
    import tensorflow as tf

    from qprop_tf.config import QPROP_ALGOS, load_config
    from qprop_tf.envs import domain_name, make_envs, resolve_env_id
    from qprop_tf.errors import ConfigError
    from qprop_tf.onpolicy import OnPolicyRunner
    from qprop_tf.qprop import taylor_control_variate
    from qprop_tf.runtime import git_commit, limit_threads, seed_everything, versions
    from reproduce.spec import merged_overrides

    if algo not in QPROP_ALGOS:
        raise ConfigError(f"diagnose needs a Q-Prop algo ({', '.join(QPROP_ALGOS)}), "
                          f"got {algo!r}")
    env_id = resolve_env_id(env)
    domain = domain_name(env_id)
    hp = merged_overrides(domain, algo) if domain != env_id else {}
    cfg = load_config(algo, env_id, seed, {**hp}, progress_bar=False)
    if overrides:
        cfg = cfg.with_overrides(overrides).validate()
    limit_threads(cfg.tf_threads)
    seed_everything(cfg.seed)
    env0 = make_envs(env_id, 1, cfg.seed, cfg.action_scale)[0]
    recorder = StateRecorder(env0)
    runner = OnPolicyRunner(cfg, envs=[recorder])
    cv, mirror = runner.control_variate, runner.mirror
    oracle_rng = np.random.default_rng([cfg.seed, 7919])
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cv_{domain}_{algo}{'_' + tag if tag else ''}_seed{seed}.csv"
    path.with_suffix(".json").write_text(json.dumps({
        "command": "python -m reproduce.diagnose " + " ".join(sys.argv[1:]),
        "config": cfg.to_dict(), "env_id": env_id, "versions": versions(),
        "git_commit": git_commit(), "iterations": iterations, "every": every,
        "states": states, "replicates": replicates, "horizon": horizon}, indent=1))
    rows: list[dict] = []
    env_steps = 0
    t_start = time.perf_counter()

    def oracle(it: int, batch, adv: np.ndarray, ev: float) -> None:
        """At a diagnosed iteration: the critic (before this batch) and the policy (before
        this update) against the CRN oracle, on states of this batch."""
        obs_t = tf.constant(batch.obs)
        q_mu, dq = cv.critic.q_and_grad(obs_t, tf.constant(batch.mean))
        a_bar = taylor_control_variate(dq.numpy(), batch.act, batch.mean)
        q_a = cv.critic.q_values(batch.obs, batch.act).numpy()
        crit_adv = q_a - q_mu.numpy()
        pick = np.sort(oracle_rng.choice(batch.n_steps, size=min(states, batch.n_steps),
                                         replace=False))
        t0 = time.perf_counter()
        d, d_se = crn_action_effects(
            env_id, mirror, [recorder.states[j] for j in pick],
            batch.act[pick].astype(np.float64), batch.mean[pick].astype(np.float64),
            cfg.gamma, horizon, replicates, oracle_rng, cfg.action_scale)
        row = {
            "iteration": it, "env_steps": env_steps + batch.n_steps,
            "average_return": float(np.mean(batch.episode_returns)),
            "policy_std": float(np.mean(mirror.std)),
            "explained_variance": ev,
            "replay_size": int(cv.replay.size),
            "corr_adv_abar_batch": corr(adv, a_bar),
            "corr_adv_criticadv_batch": corr(adv, crit_adv),
            "corr_D_adv": corr(d, adv[pick]),
            "corr_D_abar": corr(d, a_bar[pick]),
            "corr_D_criticadv": corr(d, crit_adv[pick]),
            "corr_abar_adv_picked": corr(a_bar[pick], adv[pick]),
            "std_adv": float(np.std(adv)), "std_abar": float(np.std(a_bar)),
            "std_D": float(np.std(d)), "mean_se_D": float(np.mean(d_se)),
            # share of var(D) that is not oracle noise (corr with D is attenuated by
            # sqrt of it)
            "reliability_D": float(1 - np.mean(d_se**2) / np.var(d)) if np.var(d) > 0
            else float("nan"),
            "spearman_D_adv": spearman(d, adv[pick]),
            "spearman_D_abar": spearman(d, a_bar[pick]),
            "slope_D_on_abar": (float(np.cov(d, a_bar[pick])[0, 1] / np.var(a_bar[pick]))
                                if np.var(a_bar[pick]) > 0 else float("nan")),
            "oracle_seconds": time.perf_counter() - t0,
            "states": len(pick), "replicates": replicates, "horizon": horizon,
        }
        rows.append(row)
        pd.DataFrame(rows).to_csv(path, index=False)
        if verbose:
            print(f"it {it:4d} steps {row['env_steps']:>8,d} "
                  f"ret {row['average_return']:8.1f} | "
                  f"corr(A_hat,A_bar) {row['corr_adv_abar_batch']:+.3f} | "
                  f"corr(D,A_hat) {row['corr_D_adv']:+.3f} "
                  f"corr(D,A_bar) {row['corr_D_abar']:+.3f} "
                  f"corr(D,Qw(a)-Qw(mu)) {row['corr_D_criticadv']:+.3f} | "
                  f"std A_hat {row['std_adv']:.2f} A_bar {row['std_abar']:.2f} "
                  f"D {row['std_D']:.2f} (se {row['mean_se_D']:.2f}, reliability "
                  f"{row['reliability_D']:.2f}) | rank corr(D,A_hat) "
                  f"{row['spearman_D_adv']:+.3f} (D,A_bar) {row['spearman_D_abar']:+.3f} | "
                  f"{row['oracle_seconds']:.0f}s", flush=True)

    def inspect(it: int, batch, adv: np.ndarray, ev: float) -> None:
        if it % every == every - 1 or it == iterations - 1:
            oracle(it, batch, adv, ev)
        recorder.states.clear()  # the next batch's states start afresh

    try:
        for it in range(iterations):
            # the iteration of training itself (qprop_tf.run), the oracle looking on
            result = runner.iterate(it, inspect=functools.partial(inspect, it))
            env_steps += result.steps
            if verbose and it % 10 == 0:
                print(f"it {it:4d} steps {env_steps:>8,d} ret "
                      f"{float(np.mean(result.returns)):8.1f} "
                      f"({time.perf_counter() - t_start:.0f}s)", flush=True)
    finally:
        runner.close()
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper")
    p.add_argument("--algo", default="qprop-c")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=120)
    p.add_argument("--every", type=int, default=30)
    p.add_argument("--states", type=int, default=64)
    p.add_argument("--replicates", type=int, default=8)
    p.add_argument("--horizon", type=int, default=300)
    p.add_argument("--out", default="results/diagnostics")
    p.add_argument("--tag", default="", help="suffix for the output file (e.g. the variant)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE")
    args = p.parse_args(argv)
    from qprop_tf.errors import ConfigError

    for name in ("iterations", "every", "states", "replicates", "horizon"):
        if getattr(args, name) < 1 or (name in ("states", "replicates")
                                       and getattr(args, name) < 2):
            print(f"diagnose: error: --{name} too small", file=sys.stderr)
            return 2
    try:
        path = diagnose(args.env, args.algo, args.seed, args.iterations, args.every,
                        args.states, args.replicates, args.horizon, Path(args.out),
                        args.overrides, tag=args.tag)
    except ConfigError as exc:
        print(f"diagnose: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
