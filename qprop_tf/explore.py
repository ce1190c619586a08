"""DDPG's exploration: Ornstein-Uhlenbeck noise, the explorer that steps the training env
and writes the replay a chunk at a time, and the noise-free evaluation.

a_t = clip(mu_theta(s_t) + x_t, low, high), x_{t+1} = x_t + theta (0 - x_t) + sigma eps_t,
eps_t ~ N(0, I) (dt = 1; theta 0.15, sigma 0.3, as the authors' ``ou_strategy.py`` in
rllabplusplus), x reset to 0 at every episode start; the clipped action is the one stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from qprop_tf.replay import ReplayBuffer
from qprop_tf.state import rng_state, set_rng_state


# ----------------------------------------------------------------------- exploration noise
def ou_step(x: np.ndarray, theta: float, sigma: float, rng: np.random.Generator,
            mu: float = 0.0, dt: float = 1.0) -> np.ndarray:
    """One Euler-Maruyama step of the Ornstein-Uhlenbeck process dx = theta (mu - x) dt + sigma dW.

    x_{t+1} = x_t + theta * (mu - x_t) * dt + sigma * sqrt(dt) * eps,   eps ~ N(0, I)
    """
    return x + theta * (mu - x) * dt + sigma * np.sqrt(dt) * rng.standard_normal(x.shape)


def ou_stationary_variance(theta: float, sigma: float, dt: float = 1.0) -> float:
    """Stationary variance of :func:`ou_step` (per dimension), for 0 < theta * dt < 2.

    x_{t+1} - mu = (1 - theta dt)(x_t - mu) + sigma sqrt(dt) eps is an AR(1) process, so at
    stationarity Var = (1 - theta dt)^2 Var + sigma^2 dt, i.e.

        Var = sigma^2 dt / (1 - (1 - theta dt)^2) = sigma^2 / (theta (2 - theta dt)),

    0.09 / 0.2775 = 0.324 (std 0.569) for theta 0.15, sigma 0.3, dt 1; the stationary mean
    is mu (0). The continuous-time limit is sigma^2 / (2 theta).
    """
    return sigma**2 * dt / (1.0 - (1.0 - theta * dt) ** 2)


class OUNoise:
    """Ornstein-Uhlenbeck exploration noise, one independent process per action dimension."""

    def __init__(self, act_dim: int, theta: float = 0.15, sigma: float = 0.3,
                 rng: np.random.Generator | None = None, mu: float = 0.0, dt: float = 1.0
                 ) -> None:
        self.theta, self.sigma, self.mu, self.dt = float(theta), float(sigma), float(mu), dt
        self.rng = rng if rng is not None else np.random.default_rng()
        self.state = np.full(act_dim, self.mu)

    def reset(self) -> None:
        """x <- mu (at every episode start)."""
        self.state = np.full_like(self.state, self.mu)

    def sample(self) -> np.ndarray:
        """Advance one step (:func:`ou_step`) and return the new state."""
        self.state = ou_step(self.state, self.theta, self.sigma, self.rng, self.mu, self.dt)
        return self.state

    def get_state(self) -> dict[str, Any]:
        """x (``state``) and the generator's state (``rng``, JSON)."""
        return {"state": np.array(self.state), "rng": rng_state(self.rng)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = np.array(state["state"])
        set_rng_state(self.rng, state["rng"])


# ----------------------------------------------------------------------- rollouts
@dataclass
class EpisodeLog:
    """Finished training episodes (unscaled returns)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)


class Explorer:
    """Steps the training env with the NumPy actor plus OU noise and writes chunks to the
    replay (:meth:`ReplayBuffer.add_steps`); the current episode carries across chunks."""

    def __init__(self, env: gym.Env, mirror: Callable[[np.ndarray], np.ndarray],
                 noise: OUNoise, replay: ReplayBuffer,
                 reward_scale: float = 1.0, truncation_is_terminal: bool = False) -> None:
        self.env, self.mirror, self.noise, self.replay = env, mirror, noise, replay
        self.reward_scale = float(reward_scale)
        self.truncation_is_terminal = bool(truncation_is_terminal)
        self.low = np.asarray(env.action_space.low, dtype=np.float64)
        self.high = np.asarray(env.action_space.high, dtype=np.float64)
        self.obs_dim = int(env.observation_space.shape[0])
        self.act_dim = int(env.action_space.shape[0])
        self.write_time = 0.0
        self.writes = 0
        self.start_episode()

    def start_episode(self) -> None:
        """Reset the env and the noise; the episode's return and length start at 0."""
        self.obs, _ = self.env.reset()
        self.noise.reset()
        self.ep_return = 0.0
        self.ep_length = 0

    def get_state(self) -> dict[str, Any]:
        """The episode in progress: its current observation, return and length (the env's
        physics and the noise are their owners' to save)."""
        return {"obs": np.array(self.obs), "ep_return": float(self.ep_return),
                "ep_length": int(self.ep_length)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.obs = np.array(state["obs"])
        self.ep_return = float(state["ep_return"])
        self.ep_length = int(state["ep_length"])

    def collect(self, n: int, log: EpisodeLog) -> None:
        """Take ``n`` env steps, append finished episodes to ``log``, write them to the replay."""
        obs_buf = np.empty((n, self.obs_dim), dtype=np.float32)
        act_buf = np.empty((n, self.act_dim), dtype=np.float32)
        rew_buf = np.empty(n, dtype=np.float64)
        lengths: list[int] = []
        last_obs: list[np.ndarray] = []
        last_done: list[bool] = []
        low, high, mirror, noise, step = self.low, self.high, self.mirror, self.noise, \
            self.env.step
        piece = 0
        for i in range(n):
            obs = self.obs
            act = np.minimum(np.maximum(mirror(obs) + noise.sample(), low), high)
            next_obs, rew, term, trunc, _ = step(act)
            obs_buf[i] = obs
            act_buf[i] = act
            rew_buf[i] = rew
            piece += 1
            self.ep_return += rew
            self.ep_length += 1
            if term or trunc:
                lengths.append(piece)
                last_obs.append(next_obs)
                last_done.append(bool(term) or (bool(trunc) and self.truncation_is_terminal))
                piece = 0
                log.returns.append(float(self.ep_return))
                log.lengths.append(self.ep_length)
                log.terminated.append(bool(term))
                self.start_episode()
            else:
                self.obs = next_obs
        is_open = piece > 0
        if is_open:
            lengths.append(piece)
            last_obs.append(self.obs)
            last_done.append(False)
        t0 = time.perf_counter()
        self.replay.add_steps(obs_buf, act_buf, self.reward_scale * rew_buf, lengths,
                              np.asarray(last_obs, dtype=np.float32), last_done,
                              last_path_open=is_open)
        self.write_time += time.perf_counter() - t0
        self.writes += 1


def evaluate(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray], min_steps: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free rollouts: whole episodes with a = clip(mu(s)) until >= ``min_steps`` steps.

    Returns (undiscounted returns, lengths), one entry per episode.
    """
    low = np.asarray(env.action_space.low, dtype=np.float64)
    high = np.asarray(env.action_space.high, dtype=np.float64)
    returns: list[float] = []
    lengths: list[int] = []
    steps = 0
    while steps < min_steps:
        obs, _ = env.reset()
        ret, length, done = 0.0, 0, False
        while not done:
            obs, rew, term, trunc, _ = env.step(np.minimum(np.maximum(policy(obs), low), high))
            ret += rew
            length += 1
            done = term or trunc
        returns.append(ret)
        lengths.append(length)
        steps += length
    return np.asarray(returns, dtype=np.float64), np.asarray(lengths, dtype=np.int64)
