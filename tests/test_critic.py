"""Critic: TD target and soft update by hand, network layout, the compiled fitting loop."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from qprop_tf.critic import Critic, QNetwork, soft_update, td_target
from qprop_tf.policy import GaussianMLPPolicy
from qprop_tf.replay import ReplayBuffer
from qprop_tf.sampler import Batch

OBS_DIM, ACT_DIM = 4, 2


def test_td_target_by_hand():
    rew = tf.constant([1.0, 2.0, -1.0, 0.5])
    terminal = tf.constant([0.0, 1.0, 0.0, 1.0])
    q_next = tf.constant([10.0, 5.0, -2.0, 100.0])
    y = td_target(rew, terminal, q_next, gamma=0.9)
    # 1 + 0.9*10, 2 (terminal), -1 + 0.9*(-2), 0.5 (terminal)
    np.testing.assert_allclose(y.numpy(), [10.0, 2.0, -2.8, 0.5], rtol=1e-6)


def test_soft_update_by_hand():
    target = [tf.Variable([1.0, 2.0]), tf.Variable([[4.0]])]
    source = [tf.Variable([3.0, -2.0]), tf.Variable([[0.0]])]
    soft_update(target, source, tau=0.25)
    # 0.25*3 + 0.75*1, 0.25*(-2) + 0.75*2, 0.75*4
    np.testing.assert_allclose(target[0].numpy(), [1.5, 1.0])
    np.testing.assert_allclose(target[1].numpy(), [[3.0]])
    soft_update(target, source, tau=0.25)
    np.testing.assert_allclose(target[0].numpy(), [1.875, 0.25])
    np.testing.assert_allclose(source[0].numpy(), [3.0, -2.0])  # source untouched


def test_qnetwork_layout():
    net = QNetwork(5, 3, seed=0)
    h0, h1 = net.hidden_layers
    assert tuple(h0.kernel.shape) == (5, 100)
    assert tuple(h1.kernel.shape) == (100 + 3, 100)  # the action joins at the 2nd layer
    assert tuple(net.out_layer.kernel.shape) == (100, 1)
    for layer in (h0, h1, net.out_layer):
        assert np.all(layer.bias.numpy() == 0.0)
    limit = np.sqrt(6.0 / (5 + 100))  # Glorot uniform
    assert np.abs(h0.kernel.numpy()).max() <= limit
    obs = tf.random.normal([7, 5])
    act = tf.random.normal([7, 3])
    q = net.q(obs, act)
    assert q.shape == (7,)
    manual = tf.nn.relu(obs @ h0.kernel)
    manual = tf.nn.relu(tf.concat([manual, act], -1) @ h1.kernel)
    np.testing.assert_allclose(q.numpy(), (manual @ net.out_layer.kernel)[:, 0].numpy(),
                               rtol=1e-5, atol=1e-6)


def random_batch(rng: np.random.Generator, n_paths: int, length: int, terminal: bool
                 ) -> Batch:
    n = n_paths * length
    obs = rng.standard_normal((n, OBS_DIM)).astype(np.float32)
    act = rng.standard_normal((n, ACT_DIM)).astype(np.float32)
    # a fixed smooth function of (s, a) as the reward
    rew = np.sin(obs[:, 0]) + obs[:, 1] * act[:, 0] - 0.5 * act[:, 1] ** 2
    ends = np.arange(1, n_paths + 1) * length - 1
    term = np.zeros(n, bool)
    term[ends] = terminal
    trunc = np.zeros(n, bool)
    trunc[ends] = not terminal
    return Batch(obs=obs, act=act, rew=rew.astype(np.float64), terminated=term,
                 truncated=trunc, logp=np.zeros(n), mean=np.zeros_like(act),
                 t=np.tile(np.arange(length), n_paths),
                 path_lengths=np.full(n_paths, length),
                 last_obs=rng.standard_normal((n_paths, OBS_DIM)).astype(np.float32),
                 path_terminated=np.full(n_paths, terminal),
                 path_truncated=np.full(n_paths, not terminal),
                 episode_returns=np.zeros(n_paths))


@pytest.fixture(scope="module")
def policy():
    tf.keras.utils.set_random_seed(0)
    return GaussianMLPPolicy(OBS_DIM, ACT_DIM)


def test_fit_waits_for_min_replay(policy):
    critic = Critic(OBS_DIM, ACT_DIM, seed=0)
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=5000)
    replay.add_batch(random_batch(np.random.default_rng(0), 9, 100, terminal=True))
    assert replay.size == 900 < critic.min_replay
    stats = critic.fit(replay, policy, 50)
    assert np.isnan(stats["loss"]) and np.isnan(stats["mean_q"])
    assert int(critic.optimizer.iterations) == 0


def test_fit_reduces_td_loss_and_runs_requested_updates(policy):
    critic = Critic(OBS_DIM, ACT_DIM, seed=0)
    np.testing.assert_array_equal(critic.target_qf.weights[0].numpy(),
                                  critic.qf.weights[0].numpy())  # target starts equal
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=5000, seed=0)
    # every path terminal after one step: y = r, a fixed regression problem
    replay.add_batch(random_batch(np.random.default_rng(1), 1500, 1, terminal=True))
    assert replay.size == 1500
    w0 = [v.numpy() for v in critic.qf.weights]
    critic.fit(replay, policy, 1)
    # one gradient step, then w' <- tau*w + (1-tau)*w' with w' = w0 before it
    for t, w, w_init in zip(critic.target_qf.weights, critic.qf.weights, w0, strict=True):
        np.testing.assert_allclose(t.numpy(), 0.001 * w.numpy() + 0.999 * w_init,
                                   rtol=1e-5, atol=1e-7)
    assert not np.allclose(critic.qf.weights[0].numpy(), w0[0])
    first = critic.fit(replay, policy, 300)
    assert int(critic.optimizer.iterations) == 301
    losses = [critic.fit(replay, policy, n)["loss"] for n in (299, 301, 300)]
    assert int(critic.optimizer.iterations) == 1201
    # a new n_updates is a new value of the same int32 input: no retrace
    assert critic.fit_function(replay, policy).experimental_get_tracing_count() == 1
    assert losses[-1] < 0.6 * first["loss"]


def test_fit_loss_matches_manual_td_loss(policy):
    """One update's loss = mean (r + gamma (1-d) Q'(s', mu(s')) - Q(s, a))^2, computed by
    hand from the same minibatch (the replay's RNG state is replayed)."""
    critic = Critic(OBS_DIM, ACT_DIM, seed=1)  # XLA loop, eager manual computation
    rng = np.random.default_rng(2)
    replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=5000, seed=5)
    replay.add_batch(random_batch(rng, 300, 3, terminal=True))
    replay.add_batch(random_batch(rng, 300, 3, terminal=False))
    # make the target differ from the online critic so the test can tell them apart
    for v in critic.target_qf.weights:
        v.assign(v + tf.random.normal(v.shape, stddev=0.3))
    state = replay._rng.state.numpy()
    obs, act, rew, done, nxt = replay.sample(critic.batch_size)
    assert 0 < float(tf.reduce_sum(done)) < critic.batch_size
    y = rew + 0.99 * (1 - done) * critic.target_qf.q(nxt, policy(nxt))
    manual = float(tf.reduce_mean(tf.square(y - critic.qf.q(obs, act))))
    replay._rng.reset(state)
    stats = critic.fit(replay, policy, 1)
    np.testing.assert_allclose(stats["loss"], manual, rtol=1e-5)


def test_xla_loop_matches_plain_graph_loop(policy):
    weights = []
    for jit in (False, True):
        critic = Critic(OBS_DIM, ACT_DIM, seed=3, jit_compile=jit)
        replay = ReplayBuffer(OBS_DIM, ACT_DIM, capacity=5000, seed=7)
        replay.add_batch(random_batch(np.random.default_rng(4), 250, 5, terminal=False))
        critic.fit(replay, policy, 25)
        weights.append([v.numpy() for v in critic.qf.weights + critic.target_qf.weights])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def numpy_q(net: QNetwork, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Q_w(s, a) in float64 NumPy from the network's weights."""
    (w0, b0), (w1, b1) = [(layer.kernel.numpy().astype(np.float64),
                           layer.bias.numpy().astype(np.float64)) for layer in net.hidden_layers]
    h = np.maximum(obs @ w0 + b0, 0.0)
    h = np.maximum(np.concatenate([h, act], axis=1) @ w1 + b1, 0.0)
    return (h @ net.out_layer.kernel.numpy() + net.out_layer.bias.numpy())[:, 0]


def test_q_and_grad_matches_finite_differences():
    critic = Critic(OBS_DIM, ACT_DIM, seed=2)
    for v in critic.qf.weights:  # non-zero biases too
        v.assign(v + tf.random.normal(v.shape, stddev=0.1, seed=1))
    rng = np.random.default_rng(3)
    obs = rng.standard_normal((50, OBS_DIM))
    mean = rng.standard_normal((50, ACT_DIM))
    q, grad = critic.q_and_grad(tf.constant(obs, tf.float32), tf.constant(mean, tf.float32))
    assert q.shape == (50,) and grad.shape == (50, ACT_DIM)
    np.testing.assert_allclose(q.numpy(), numpy_q(critic.qf, obs, mean), rtol=1e-4, atol=1e-5)
    eps = 1e-6
    for j in range(ACT_DIM):
        d = np.zeros_like(mean)
        d[:, j] = eps
        fd = (numpy_q(critic.qf, obs, mean + d) - numpy_q(critic.qf, obs, mean - d)) / (2 * eps)
        np.testing.assert_allclose(grad.numpy()[:, j], fd, rtol=1e-3, atol=1e-5)
