"""Collect whole paths from several envs, with a NumPy policy mirror (no TF per step).

Batch semantics follow the authors' rllab sampler: whole paths are collected until the
batch holds at least ``batch_size`` env steps. With ``n_envs`` > 1 an env starts a new
episode only while the steps collected so far, finished and in progress, are below
``batch_size``; every path that was started is run to its end. With long episodes this can
overshoot ``batch_size`` by up to (n_envs - 1) episodes, so the faithful default is one env
(progress.csv logs the real batch size every iteration).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from qprop_tf.policy import NumpyPolicy


@dataclass
class Batch:
    """A batch of whole paths, flattened path after path.

    Per step (N rows): obs, act (as sampled, before clipping), rew, terminated, truncated
    (true only on a path's last step), logp and mean under the sampling policy, t (step
    index within its episode).
    Per path (P rows): path_lengths, last_obs (the observation after the last step, used
    to bootstrap at truncation and to rebuild next-observations), path_terminated,
    path_truncated, episode_returns (undiscounted).
    """

    obs: np.ndarray
    act: np.ndarray
    rew: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    logp: np.ndarray
    mean: np.ndarray
    t: np.ndarray
    path_lengths: np.ndarray
    last_obs: np.ndarray
    path_terminated: np.ndarray
    path_truncated: np.ndarray
    episode_returns: np.ndarray

    @property
    def n_steps(self) -> int:
        return int(self.rew.shape[0])

    @property
    def n_paths(self) -> int:
        return int(self.path_lengths.shape[0])

    @property
    def path_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.path_lengths)[:-1]]).astype(np.int64)

    def next_obs(self) -> np.ndarray:
        """s_{t+1} for every step, rebuilt from obs and last_obs (nothing stored twice)."""
        nxt = np.empty_like(self.obs)
        nxt[:-1] = self.obs[1:]
        ends = np.cumsum(self.path_lengths) - 1
        nxt[ends] = self.last_obs
        return nxt


class Sampler:
    """Runs ``envs`` with a :class:`NumpyPolicy` until a batch of whole paths is collected."""

    def __init__(self, envs: list[gym.Env], policy: NumpyPolicy, batch_size: int,
                 rng: np.random.Generator) -> None:
        self.envs = envs
        self.policy = policy
        self.batch_size = batch_size
        self.rng = rng
        space = envs[0].action_space
        self.low = np.asarray(space.low, dtype=np.float64)
        self.high = np.asarray(space.high, dtype=np.float64)

    def sample(self) -> Batch:
        n = len(self.envs)
        paths: list[dict] = []
        current: list[dict | None] = [None] * n
        obs: list[np.ndarray | None] = [None] * n
        committed = 0  # steps collected so far, finished paths and paths in progress
        low, high, policy, rng = self.low, self.high, self.policy, self.rng

        def start(i: int) -> None:
            o, _ = self.envs[i].reset()
            obs[i] = o
            current[i] = {"obs": [], "act": [], "rew": [], "noise": [], "mean": []}

        for i in range(n):
            start(i)
        active = list(range(n))
        steps = [env.step for env in self.envs]
        while active:
            o_batch = obs[active[0]][None] if len(active) == 1 else np.stack(
                [obs[i] for i in active])
            act, mu, noise = policy.sample(o_batch, rng)
            clipped = np.minimum(np.maximum(act, low), high)
            still: list[int] = []
            for k, i in enumerate(active):
                path = current[i]
                o2, r, term, trunc, _ = steps[i](clipped[k])
                path["obs"].append(obs[i])
                path["act"].append(act[k])
                path["rew"].append(r)
                path["noise"].append(noise[k])
                path["mean"].append(mu[k])
                committed += 1
                obs[i] = o2
                if term or trunc:
                    path["last_obs"] = o2
                    path["terminated"] = bool(term)
                    path["truncated"] = bool(trunc) and not term
                    paths.append(path)
                    current[i] = None
                    if committed < self.batch_size:
                        start(i)
                        still.append(i)
                else:
                    still.append(i)
            active = still
        return self._to_batch(paths, policy)

    @staticmethod
    def _to_batch(paths: list[dict], policy: NumpyPolicy) -> Batch:
        lengths = np.array([len(p["rew"]) for p in paths], dtype=np.int64)
        n = int(lengths.sum())
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        ends = np.cumsum(lengths) - 1
        p_term = np.array([p["terminated"] for p in paths], dtype=bool)
        p_trunc = np.array([p["truncated"] for p in paths], dtype=bool)
        terminated[ends] = p_term
        truncated[ends] = p_trunc
        rew = np.concatenate([np.asarray(p["rew"], dtype=np.float64) for p in paths])
        return Batch(
            obs=np.concatenate([np.asarray(p["obs"]) for p in paths]).astype(np.float32),
            act=np.concatenate([np.asarray(p["act"]) for p in paths]).astype(np.float32),
            rew=rew,
            terminated=terminated,
            truncated=truncated,
            logp=policy.log_prob_from_noise(np.concatenate([np.asarray(p["noise"])
                                                            for p in paths])),
            mean=np.concatenate([np.asarray(p["mean"]) for p in paths]).astype(np.float32),
            t=np.concatenate([np.arange(m) for m in lengths]).astype(np.int64),
            path_lengths=lengths,
            last_obs=np.stack([p["last_obs"] for p in paths]).astype(np.float32),
            path_terminated=p_term,
            path_truncated=p_trunc,
            episode_returns=np.array([float(np.sum(p["rew"])) for p in paths]),
        )
