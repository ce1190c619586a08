"""The seven MuJoCo domains of the paper, as Gymnasium v5 environments.

The paper ran Gym -v1 on an old MuJoCo; this project runs the v5 ids (see the README's
"Deviations" section). Names are accepted as the paper wrote them ("Walker") or as env ids.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from qprop_tf.errors import ConfigError

DOMAINS: dict[str, str] = {
    "Ant": "Ant-v5",
    "HalfCheetah": "HalfCheetah-v5",
    "Hopper": "Hopper-v5",
    "Humanoid": "Humanoid-v5",
    "Reacher": "Reacher-v5",
    "Swimmer": "Swimmer-v5",
    "Walker": "Walker2d-v5",
}
"""Paper name -> Gymnasium v5 id (Table 1 order)."""

ALIASES: dict[str, str] = {"Walker2d": "Walker2d-v5"}

NON_UNIT_BOUNDS: dict[str, float] = {"Humanoid-v5": 0.4, "InvertedPendulum-v5": 3.0,
                                     "Pendulum-v1": 2.0}
"""The envs whose action bounds are not [-1, 1] (env id -> |bound|): the only ones where
``action_scale`` changes anything (a test checks this against the envs)."""

EXTRA_ENVS: tuple[str, ...] = (
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Pendulum-v1",
)
"""Small continuous-control envs accepted for sanity checks and fast tests."""


def valid_env_names() -> list[str]:
    return [*DOMAINS, *ALIASES, *DOMAINS.values(), *EXTRA_ENVS]


def resolve_env_id(name: str) -> str:
    """Map a paper name or env id to a Gymnasium id; raise ConfigError listing valid names."""
    if name in DOMAINS:
        return DOMAINS[name]
    if name in ALIASES:
        return ALIASES[name]
    if name in DOMAINS.values() or name in EXTRA_ENVS:
        return name
    lowered = {n.lower(): n for n in valid_env_names()}
    hint = f" (did you mean {lowered[name.lower()]!r}?)" if name.lower() in lowered else ""
    raise ConfigError(
        f"unknown env {name!r}{hint}; valid: {', '.join(valid_env_names())}")


def action_scale_matters(name: str) -> bool:
    """Whether ``action_scale`` changes the env (bounds not [-1, 1]; Humanoid of the seven)."""
    return resolve_env_id(name) in NON_UNIT_BOUNDS


def domain_name(env_id: str) -> str:
    """The paper's name for an env id (the id itself for the extra envs)."""
    for paper, eid in DOMAINS.items():
        if eid == env_id:
            return paper
    return env_id


ACTION_SCALES = ("env", "unit")
"""The space the agent acts in (config field ``action_scale``): ``"unit"`` (the default, the
authors'), [-1, 1] per dimension mapped linearly onto the bounds, as rllab's ``normalize``
wrapper, which the authors' launcher puts around every env, does; ``"env"``, the env's own
bounds (this project's runs before 2026-11-28: its first Humanoid runs, now an extra row)."""


def unit_bounds(space: gym.spaces.Box) -> bool:
    """Whether a Box is already [-1, 1] in every dimension (six of the seven domains)."""
    return bool(np.all(space.low == -1.0) and np.all(space.high == 1.0))


def check_action_scale(action_scale: str) -> str:
    """``action_scale`` if it is one of :data:`ACTION_SCALES`, else a ConfigError."""
    if action_scale not in ACTION_SCALES:
        raise ConfigError(f"unknown action_scale {action_scale!r}; valid: "
                          f"{', '.join(ACTION_SCALES)}")
    return action_scale


def in_action_units(env: gym.Env, action_scale: str) -> gym.Env:
    """``env`` acting in the agent's units: with ``"unit"`` and bounds not [-1, 1], wrapped in
    Gymnasium's ``RescaleAction`` (a -> low + (a + 1) (high - low) / 2); else ``env`` itself."""
    if check_action_scale(action_scale) == "unit" and not unit_bounds(env.action_space):
        ones = np.ones(env.action_space.shape, dtype=env.action_space.dtype)
        return gym.wrappers.RescaleAction(env, -ones, ones)
    return env


def make_env(name: str, seed: int, action_scale: str = "env") -> gym.Env:
    """One seeded env with its default time limit (1000 steps; Reacher 50).

    The first ``reset`` is seeded with ``seed``; later resets continue the env's own RNG,
    so a run's episodes are a deterministic function of the seed. Actions are clipped to
    the bounds by the sampler (batched, in NumPy) before they reach ``step``.

    ``action_scale="unit"``: the agent acts in [-1, 1]^d, and Gymnasium's ``RescaleAction``
    maps a to low + (a + 1) (high - low) / 2 (rllab's ``normalize``: the authors' setting).
    Only an env whose bounds are not [-1, 1] is wrapped (Humanoid's are +-0.4), so on the
    others both settings step the same env with the same actions, bit for bit. (This
    helper's default is the raw env; a run's setting is its Config's, ``"unit"`` by default.)
    """
    check_action_scale(action_scale)
    env = gym.make(resolve_env_id(name), disable_env_checker=True)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ConfigError(f"{name}: only continuous (Box) action spaces are supported")
    env = in_action_units(env, action_scale)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def make_envs(name: str, n: int, seed: int, action_scale: str = "env") -> list[gym.Env]:
    """``n`` independently seeded copies (seeds seed*1000 + i, so runs never share streams)."""
    return [make_env(name, seed * 1000 + i, action_scale) for i in range(n)]
