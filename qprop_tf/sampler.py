"""Collect paths from several envs, with a NumPy policy mirror (no TF per step).

Two batch semantics (``Config.rollout``):

- ``paths`` (the authors' rllab sampler, the default): whole paths are collected until the
  batch holds at least ``batch_size`` env steps. With ``n_envs`` > 1 an env starts a new
  episode only while the steps collected so far, finished and in progress, are below
  ``batch_size``; every path that was started is run to its end. With long episodes this can
  overshoot ``batch_size`` by up to (n_envs - 1) episodes, so the faithful default is one env
  (progress.csv logs the real batch size every iteration). Every batch starts new episodes.
- ``fixed`` (sb3, OpenAI baselines): exactly ``batch_size`` steps. An episode in progress
  at the end of a batch is cut there (``path_cut``: its advantages bootstrap with V of the
  next observation) and continues in the next batch; ``episode_returns`` then holds the
  full returns of the episodes that *ended* in the batch, which may be none.
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
    path_truncated, path_cut (ended by the batch's end, not the episode's: fixed rollouts).
    Per episode that ended in the batch: episode_returns (undiscounted, whole episode) and
    episode_lengths. With whole paths these are per path.
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
    path_cut: np.ndarray | None = None
    episode_lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.path_cut is None:
            self.path_cut = np.zeros(self.path_lengths.shape[0], dtype=bool)
        if self.episode_lengths is None:
            self.episode_lengths = np.asarray(self.path_lengths)

    @property
    def n_steps(self) -> int:
        return int(self.rew.shape[0])

    @property
    def n_paths(self) -> int:
        return int(self.path_lengths.shape[0])

    @property
    def path_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.path_lengths)[:-1]]).astype(np.int64)


class Sampler:
    """Runs ``envs`` with a :class:`NumpyPolicy` until a batch is collected (whole paths,
    or exactly ``batch_size`` steps with ``fixed_length``)."""

    def __init__(self, envs: list[gym.Env], policy: NumpyPolicy, batch_size: int,
                 rng: np.random.Generator, fixed_length: bool = False) -> None:
        self.envs = envs
        self.policy = policy
        self.batch_size = batch_size
        self.rng = rng
        self.fixed_length = fixed_length
        space = envs[0].action_space
        self.low = np.asarray(space.low, dtype=np.float64)
        self.high = np.asarray(space.high, dtype=np.float64)
        # fixed_length: the episode in progress in each env (observation, steps, return)
        self.obs: np.ndarray | None = None
        self.ep_t = np.zeros(len(envs), dtype=np.int64)
        self.ep_return = np.zeros(len(envs), dtype=np.float64)

    def get_state(self) -> dict[str, np.ndarray]:
        """The episodes in progress (fixed_length; empty otherwise, as every batch of whole
        paths starts new episodes). The envs' physics are the caller's to save."""
        if not self.fixed_length or self.obs is None:
            return {}
        return {"obs": self.obs.copy(), "ep_t": self.ep_t.copy(),
                "ep_return": self.ep_return.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if "obs" in state:
            self.obs = np.array(state["obs"])
            self.ep_t = np.array(state["ep_t"], dtype=np.int64)
            self.ep_return = np.array(state["ep_return"], dtype=np.float64)

    def sample(self) -> Batch:
        if self.fixed_length:
            return self._sample_fixed()
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

    def _sample_fixed(self) -> Batch:
        n = len(self.envs)
        if self.obs is None:
            self.obs = np.stack([env.reset()[0] for env in self.envs])
            self.ep_t[:] = 0
            self.ep_return[:] = 0.0
        low, high, policy, rng = self.low, self.high, self.policy, self.rng

        def piece(i: int) -> dict:
            return {"obs": [], "act": [], "rew": [], "noise": [], "mean": [],
                    "t0": int(self.ep_t[i])}

        current = [piece(i) for i in range(n)]
        paths: list[dict] = []
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        committed = 0
        steps = [env.step for env in self.envs]
        while committed < self.batch_size:
            active = list(range(min(n, self.batch_size - committed)))
            act, mu, noise = policy.sample(self.obs[active], rng)
            clipped = np.minimum(np.maximum(act, low), high)
            for k, i in enumerate(active):
                path = current[i]
                o2, r, term, trunc, _ = steps[i](clipped[k])
                path["obs"].append(self.obs[i].copy())
                path["act"].append(act[k])
                path["rew"].append(r)
                path["noise"].append(noise[k])
                path["mean"].append(mu[k])
                committed += 1
                self.ep_t[i] += 1
                self.ep_return[i] += r
                if term or trunc:
                    path.update(last_obs=o2, terminated=bool(term),
                                truncated=bool(trunc) and not term, cut=False)
                    paths.append(path)
                    ep_returns.append(float(self.ep_return[i]))
                    ep_lengths.append(int(self.ep_t[i]))
                    self.obs[i] = self.envs[i].reset()[0]
                    self.ep_t[i] = 0
                    self.ep_return[i] = 0.0
                    current[i] = piece(i)
                else:
                    self.obs[i] = o2
        for i in range(n):
            if current[i]["rew"]:
                current[i].update(last_obs=self.obs[i].copy(), terminated=False,
                                  truncated=False, cut=True)
                paths.append(current[i])
        batch = self._to_batch(paths, policy)
        batch.episode_returns = np.asarray(ep_returns, dtype=np.float64)
        batch.episode_lengths = np.asarray(ep_lengths, dtype=np.int64)
        return batch

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
            t=np.concatenate([p.get("t0", 0) + np.arange(m)
                              for p, m in zip(paths, lengths, strict=True)]).astype(np.int64),
            path_lengths=lengths,
            last_obs=np.stack([p["last_obs"] for p in paths]).astype(np.float32),
            path_terminated=p_term,
            path_truncated=p_trunc,
            episode_returns=np.array([float(np.sum(p["rew"])) for p in paths]),
            path_cut=np.array([p.get("cut", False) for p in paths], dtype=bool),
        )
