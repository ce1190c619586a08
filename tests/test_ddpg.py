"""DDPG: OU noise statistics, the actor step, chunked replay writes, noise-free evaluation,
reward scaling, the NaN guard, and the CLI end to end (smoke + same-seed determinism)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from qprop_tf.actor import DeterministicActor, NumpyActor
from qprop_tf.config import load_config
from qprop_tf.ddpg import DDPG, DDPGRunner
from qprop_tf.errors import NonFiniteError
from qprop_tf.explore import (
    EpisodeLog,
    Explorer,
    OUNoise,
    evaluate,
    ou_stationary_variance,
    ou_step,
)
from qprop_tf.progress import TIME_COLUMNS
from qprop_tf.replay import ReplayBuffer
from qprop_tf.run import train

ROOT = Path(__file__).resolve().parent.parent
OBS_DIM, ACT_DIM = 3, 2


# ----------------------------------------------------------------------- OU noise
def test_ou_step_by_hand():
    x = np.array([1.0, -2.0])
    eps = np.random.default_rng(5).standard_normal(2)
    got = ou_step(x, theta=0.15, sigma=0.3, rng=np.random.default_rng(5))
    np.testing.assert_allclose(got, x + 0.15 * (0.0 - x) + 0.3 * eps)


def test_ou_stationary_mean_and_variance():
    """x_{t+1} = (1 - theta) x_t + sigma eps  =>  Var = sigma^2 / (1 - (1 - theta)^2), mean 0."""
    theta, sigma, n = 0.15, 0.3, 40_000
    noise = OUNoise(n, theta, sigma, np.random.default_rng(0))  # n independent processes
    for _ in range(300):  # (1 - theta)^300 ~ 1e-21: the start at 0 is forgotten
        x = noise.sample()
    var = ou_stationary_variance(theta, sigma)
    assert var == pytest.approx(0.09 / 0.2775)
    # standard errors: sqrt(var / n) for the mean, var * sqrt(2 / n) for the variance (0.7%)
    assert abs(x.mean()) < 5 * np.sqrt(var / n)
    assert x.var() == pytest.approx(var, rel=0.035)
    # the test can tell the discrete process from the continuous-time sigma^2 / (2 theta)
    assert abs(x.var() - sigma**2 / (2 * theta)) > 0.05 * var
    noise.reset()
    np.testing.assert_array_equal(noise.state, 0.0)


# ----------------------------------------------------------------------- the actor
def test_actor_layout_bounds_and_numpy_mirror():
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    actor = DeterministicActor(OBS_DIM, ACT_DIM, low, high, seed=0)
    assert [layer.units for layer in actor.hidden_layers] == [100, 50, 25]
    assert all(layer.activation.__name__ == "relu" for layer in actor.hidden_layers)
    assert actor.out_layer.activation.__name__ == "tanh"
    obs = np.random.default_rng(0).standard_normal((64, OBS_DIM)).astype(np.float32) * 100
    a = actor(obs).numpy()
    assert np.all(a >= low) and np.all(a <= high)
    assert a[:, 0].min() < -1.5 and a[:, 1].max() > 0.75  # saturates towards both bounds
    mirror = NumpyActor(actor)
    np.testing.assert_allclose(mirror(obs.astype(np.float64)), a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mirror(obs[0].astype(np.float64)), a[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        DeterministicActor(OBS_DIM, 1, np.array([-np.inf]), np.array([np.inf]))


def small_agent(**kw) -> DDPG:
    args = {"actor_hidden": (32, 16), "qf_hidden": (32, 32), "replay_size": 500,
            "min_replay": 10, "jit_compile": False, "seed": 0, **kw}
    return DDPG(OBS_DIM, ACT_DIM, -np.ones(ACT_DIM), np.ones(ACT_DIM), **args)


def fill_random(agent: DDPG, n_paths: int = 5, length: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n_paths):
        agent.replay.add_steps(rng.standard_normal((length, OBS_DIM)),
                               rng.uniform(-1, 1, (length, ACT_DIM)), rng.standard_normal(length),
                               [length], rng.standard_normal((1, OBS_DIM)), [False])


def test_actor_step_increases_q_with_the_critic_fixed():
    agent = small_agent(actor_lr=1e-3)
    obs = tf.constant(np.random.default_rng(1).standard_normal((64, OBS_DIM)), tf.float32)
    qf = agent.critic.qf

    def q_pi() -> float:
        return float(tf.reduce_mean(qf.q(obs, agent.actor(obs))))

    critic_before = [v.numpy().copy() for v in qf.weights]
    before = q_pi()
    loss = agent.actor_step(obs)
    assert loss == pytest.approx(-before, rel=1e-5)  # L = -mean Q(s, mu(s)) before the step
    after = q_pi()
    assert after > before
    for v, w in zip(qf.weights, critic_before, strict=True):
        np.testing.assert_array_equal(v.numpy(), w)
    np.testing.assert_allclose(agent.mirror(obs.numpy()), agent.actor(obs).numpy(), rtol=1e-4,
                               atol=1e-5)


def test_compiled_updates_move_targets_softly_and_resync_the_mirror():
    agent = small_agent(tau=0.01)
    fill_random(agent)
    actor0 = [v.numpy().copy() for v in agent.actor.param_list()]
    bootstrap_policies = []
    update_on_batch = agent.critic.update_on_batch

    def spy(*args):
        bootstrap_policies.append(args[-1])
        return update_on_batch(*args)

    agent.critic.update_on_batch = spy  # seen while the compiled loop is traced
    stats = agent.train(3)
    assert bootstrap_policies == [agent.target_actor]  # y uses mu_theta'(s'), the target actor
    assert stats["updates"] == 3
    assert all(np.isfinite(stats[k]) for k in ("critic_loss", "mean_q", "actor_loss"))
    obs = np.random.default_rng(2).standard_normal((8, OBS_DIM))
    np.testing.assert_allclose(agent.mirror(obs), agent.actor(obs.astype(np.float32)).numpy(),
                               rtol=1e-4, atol=1e-5)
    for a0, a, t in zip(actor0, agent.actor.param_list(), agent.target_actor.param_list(),
                        strict=True):
        moved, target_moved = np.abs(a.numpy() - a0).max(), np.abs(t.numpy() - a0).max()
        # 3 soft updates with tau 0.01: the target moves, by ~3% of the actor's move
        assert 0 < target_moved < 0.1 * moved
    agent.train(5)  # a different n: no retrace
    assert agent._train_fn.experimental_get_tracing_count() == 1
    assert agent.train(0)["updates"] == 0


def test_updates_owed_follow_min_replay():
    agent = small_agent(min_replay=30)
    fill_random(agent, n_paths=1, length=25)
    assert agent.n_updates_due(16) == 0
    fill_random(agent, n_paths=1, length=10)  # 35 transitions: steps 30..35 owe updates
    assert agent.n_updates_due(10) == 6
    assert agent.n_updates_due(3) == 3


# ----------------------------------------------------------------------- replay: add_steps
def reference_rows(paths: list[tuple[int, int]], capacity: int) -> set[tuple[int, int]]:
    """Transitions (pid, t) that survive when paths (pid, length so far) are written whole."""
    rows: list[tuple[int, int, bool]] = []
    for pid, m in paths:
        rows += [(pid, t, True) for t in range(m)] + [(pid, m, False)]
    return {(p, t) for p, t, s in rows[-capacity:] if s}


@pytest.mark.parametrize("capacity", [1000, 23])
def test_add_steps_appends_partial_paths_with_correct_next_obs(capacity):
    """Random episodes cut into random chunks (paths open across calls), with wrap-around."""
    replay = ReplayBuffer(3, 2, capacity=capacity, seed=0)
    rng = np.random.default_rng(capacity)
    ep_lengths = rng.integers(1, 15, size=30)
    terminal = rng.random(30) < 0.5
    stream = [(pid, t) for pid, m in enumerate(ep_lengths) for t in range(m)]

    @tf.function
    def sample():
        return replay.sample(256)

    written: list[tuple[int, int]] = []  # (pid, steps written so far)
    i = 0
    while i < len(stream):
        k = int(rng.integers(1, 9))
        chunk = stream[i:i + k]
        i += len(chunk)
        pids = [p for p, _ in chunk]
        lengths, last_obs, last_done = [], [], []
        for pid in dict.fromkeys(pids):
            ts = [t for p, t in chunk if p == pid]
            lengths.append(len(ts))
            ends = ts[-1] + 1 == ep_lengths[pid]
            last_obs.append([pid, ts[-1] + 1, 7])
            last_done.append(bool(ends and terminal[pid]))
            if written and written[-1][0] == pid:
                written[-1] = (pid, ts[-1] + 1)
            else:
                written.append((pid, ts[-1] + 1))
        is_open = chunk[-1][1] + 1 < ep_lengths[chunk[-1][0]]
        obs = np.array([[p, t, 7] for p, t in chunk], np.float32)
        replay.add_steps(obs, obs[:, :2], 1000.0 * obs[:, 0] + obs[:, 1], lengths,
                         np.array(last_obs, np.float32), last_done, last_path_open=is_open)
        draws = [sample() for _ in range(6)]
        o, a, r, d, nxt = (np.concatenate([x[j].numpy() for x in draws]) for j in range(5))
        pid, t = o[:, 0].astype(int), o[:, 1].astype(int)
        np.testing.assert_array_equal(nxt[:, 0], pid)  # never crosses into another path
        np.testing.assert_array_equal(nxt[:, 1], t + 1)
        np.testing.assert_array_equal(nxt[:, 2], 7)
        np.testing.assert_array_equal(a, o[:, :2])
        np.testing.assert_array_equal(r, 1000.0 * pid + t)
        last = t + 1 == ep_lengths[pid]
        np.testing.assert_array_equal(d, (last & terminal[pid]).astype(np.float32))
        expected = reference_rows(written, capacity)
        assert set(zip(pid.tolist(), t.tolist(), strict=True)) <= expected
        assert replay.size == len(expected)
        if capacity >= 1000:
            assert replay.rows_filled == sum(m + 1 for _, m in written)  # no row wasted


def test_add_steps_checks_continuation_and_close_open_path():
    replay = ReplayBuffer(3, 2, capacity=50)
    obs = np.array([[0, 0, 7], [0, 1, 7]], np.float32)
    replay.add_steps(obs, obs[:, :2], [0.0, 1.0], [2], np.array([[0, 2, 7]], np.float32),
                     [False], last_path_open=True)
    assert replay.rows_filled == 3 and replay.size == 2
    other = np.array([[5, 0, 7]], np.float32)
    with pytest.raises(ValueError, match="continue"):
        replay.add_steps(other, other[:, :2], [0.0], [1], other, [False])
    replay.close_open_path()  # the provisional row becomes the path's sentinel
    replay.add_steps(other, other[:, :2], [0.0], [1], other, [True])
    assert replay.rows_filled == 5 and replay.size == 3
    with pytest.raises(ValueError, match="open path"):
        replay.add_steps(other, other[:, :2], [0.0], [1], other, [True], last_path_open=True)


# ----------------------------------------------------------------------- rollouts
class Recorder(gym.Wrapper):
    """Records every (obs, action, reward, next_obs, terminated, truncated)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps: list[tuple] = []
        self._obs = None

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self._obs = obs
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self.steps.append((self._obs, np.array(action), out[1], out[0], out[2], out[3]))
        self._obs = out[0]
        return out


@pytest.mark.parametrize("truncation_is_terminal", [False, True])
def test_explorer_chunks_store_the_true_transitions_with_scaled_rewards(truncation_is_terminal):
    env = Recorder(gym.make("InvertedPendulum-v5", max_episode_steps=9))
    env.reset(seed=0)
    act_dim = env.action_space.shape[0]
    actor = DeterministicActor(4, act_dim, env.action_space.low, env.action_space.high, seed=0)
    replay = ReplayBuffer(4, act_dim, capacity=1000)
    noise = OUNoise(act_dim, 0.15, 0.3, np.random.default_rng(0))
    explorer = Explorer(env, NumpyActor(actor), noise, replay, reward_scale=0.1,
                        truncation_is_terminal=truncation_is_terminal)
    log = EpisodeLog()
    for k in [5, 1, 7, 3, 16, 2, 9]:
        explorer.collect(k, log)
    rec = env.steps
    assert len(rec) == 43 and replay.size == 43
    rows = np.flatnonzero(replay._start)  # transitions in chronological order (no wrap)
    o, a, r, d, nxt = (x.numpy() for x in replay.gather(tf.constant(rows, tf.int32)))
    np.testing.assert_allclose(o, np.array([s[0] for s in rec]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a, np.array([s[1] for s in rec]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(r, 0.1 * np.array([s[2] for s in rec]), rtol=1e-6)
    np.testing.assert_allclose(nxt, np.array([s[3] for s in rec]), rtol=1e-6, atol=1e-6)
    term = np.array([s[4] for s in rec])
    trunc = np.array([s[5] for s in rec]) & ~term
    assert term.any() and trunc.any()  # both kinds of episode end occur (seeded)
    np.testing.assert_array_equal(d, (term | (trunc & truncation_is_terminal)).astype(float))
    # logged returns are unscaled and cover exactly the finished episodes
    assert len(log.returns) == int((term | trunc).sum())
    ends = np.flatnonzero(term | trunc)
    starts = np.concatenate([[0], ends[:-1] + 1])
    rews = np.array([s[2] for s in rec])
    np.testing.assert_allclose(log.returns, [rews[s:e + 1].sum() for s, e in
                                             zip(starts, ends, strict=True)])
    assert np.all(np.abs(a) <= env.action_space.high + 1e-6)  # clipped actions are stored


def tiny_cfg(*extra: str):
    return load_config("ddpg", "InvertedPendulum-v5", 0, [
        "batch_size=100", "max_steps=300", "min_replay=50", "eval_steps=30",
        "replay_size=2000", "actor_hidden=16,16", "qf_hidden=16,16", "critic_xla=false",
        "progress_bar=false", "ddpg_chunk=8", *extra])


def test_evaluation_is_noise_free():
    runner = DDPGRunner(tiny_cfg())
    try:
        rec = Recorder(runner.eval_env)
        runner.eval_env = rec
        state = runner.noise.rng.bit_generator.state
        runner.noise.state[:] = 0.7
        returns, lengths = runner.evaluate(30)
        assert lengths.sum() >= 30 and returns.size == lengths.size
        assert runner.noise.rng.bit_generator.state == state  # no noise was drawn
        obs = np.array([s[0] for s in rec.steps])
        acts = np.array([s[1] for s in rec.steps])
        low, high = rec.action_space.low, rec.action_space.high
        expected = np.array([np.clip(runner.agent.mirror(o), low, high) for o in obs])
        np.testing.assert_array_equal(acts, expected)
        # same eval-env seed, different noise state: identical returns
        env_a = gym.make("InvertedPendulum-v5")
        env_b = gym.make("InvertedPendulum-v5")
        env_a.reset(seed=11)
        env_b.reset(seed=11)
        runner.noise.sample()
        r_a, _ = evaluate(env_a, runner.agent.mirror, 30)
        runner.noise.state[:] = -3.0
        r_b, _ = evaluate(env_b, runner.agent.mirror, 30)
        np.testing.assert_array_equal(r_a, r_b)
    finally:
        runner.close()


def test_nan_in_losses_raises_and_keeps_the_log(tmp_path, monkeypatch):
    rows = []
    real_train = DDPG.train

    def poisoned(self, n):
        stats = real_train(self, n)
        if len(rows) == 1 and stats["updates"]:
            stats["critic_loss"] = float("nan")
        return stats

    monkeypatch.setattr(DDPG, "train", poisoned)
    with pytest.raises(NonFiniteError, match="critic_loss"):
        train(tiny_cfg(), tmp_path / "nan", verbose=False,
                   on_iteration=lambda i, row, actor: rows.append(row))
    df = pd.read_csv(tmp_path / "nan" / "progress.csv")
    assert list(df.iteration) == [0]
    assert np.isfinite(df.eval_return).all()


# ----------------------------------------------------------------------- end to end
def _cli(out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "qprop_tf", "train", "--algo", "ddpg", "--env", "Hopper",
           "--seed", "0", "--batch-size", "500", "--max-steps", "1000", "--set", "eval_steps=200",
           "--set", "min_replay=200", "--out", str(out), "--no-progress"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddpg_cli")
    return [(_cli(base / f"run{i}"), base / f"run{i}") for i in range(2)]


def test_cli_smoke_writes_eval_return(two_runs):
    proc, out = two_runs[0]
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_csv(out / "progress.csv")
    assert list(df.iteration) == [0, 1]
    assert list(df.env_steps) == [500, 1000]
    np.testing.assert_allclose(df.paper_episodes, df.env_steps / 1000)
    for col in ("eval_return", "eval_episodes", "critic_loss", "mean_q", "actor_loss",
                "average_return", "max_return_so_far", "real_episodes", "steps_per_second"):
        assert col in df.columns
    assert np.isfinite(df.eval_return).all() and (df.eval_episodes >= 1).all()
    assert (df.eval_steps >= 200).all()
    assert df.max_return_so_far.iloc[-1] == df.eval_return.max()
    # updates start at min_replay=200: 301 in the first epoch, then one per step
    assert list(df.updates) == [301, 500]
    assert np.isfinite(df.critic_loss).all() and np.isfinite(df.actor_loss).all()
    assert (out / "config.json").exists() and list(out.glob("events.out.tfevents.*"))
    assert "ep    1" in proc.stdout + proc.stderr


def test_cli_same_seed_gives_identical_progress(two_runs):
    (p0, out0), (p1, out1) = two_runs
    assert p0.returncode == 0 and p1.returncode == 0
    a = pd.read_csv(out0 / "progress.csv").drop(columns=list(TIME_COLUMNS), errors="ignore")
    b = pd.read_csv(out1 / "progress.csv").drop(columns=list(TIME_COLUMNS), errors="ignore")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
