"""Component state as checkpoint entries: TF variables, NumPy generators, envs.

Every component of a run declares its own state with ``get_state()`` / ``set_state()``; the
algorithm gathers them into one dict (NumPy arrays go to the checkpoint's ``state.npz``, the
rest, JSON, to its ``meta.json``). These helpers turn the common pieces into such entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def prefixed(prefix: str, state: dict[str, Any]) -> dict[str, Any]:
    """{prefix/key: value}: a component's state under its name in the algorithm's."""
    return {f"{prefix}/{k}": v for k, v in state.items()}


def unprefixed(prefix: str, state: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``state`` under ``prefix/``, with the prefix taken off."""
    start = prefix + "/"
    return {k[len(start):]: v for k, v in state.items() if k.startswith(start)}


def split(state: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta): the NumPy arrays of a state (for state.npz) and the rest (JSON)."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    return arrays, {k: v for k, v in state.items() if k not in arrays}


def _key(prefix: str, i: int) -> str:
    return f"{prefix}/{i}" if prefix else str(i)


def variables_state(prefix: str, variables: list[Any]) -> dict[str, np.ndarray]:
    """{prefix/i: value} ({i: value} for prefix "") for a list of tf.Variables
    (model.variables, optimizer.variables)."""
    return {_key(prefix, i): np.array(v.numpy()) for i, v in enumerate(variables)}


def assign_variables(prefix: str, variables: list[Any], arrays: dict[str, np.ndarray]) -> None:
    """Inverse of :func:`variables_state`; a value of another shape raises ValueError."""
    for i, v in enumerate(variables):
        value = arrays[_key(prefix, i)]
        if tuple(value.shape) != tuple(v.shape):
            raise ValueError(f"checkpoint {_key(prefix, i)}: shape {value.shape} != {v.shape}")
        v.assign(value)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def env_state(env: Any, prefix: str, arrays: dict[str, np.ndarray],
              physics: bool = False) -> dict[str, Any]:
    """An env's RNG state (JSON) and, with ``physics``, the state it needs to continue an
    episode mid-way (into ``arrays``): MuJoCo's full integration state for MuJoCo envs,
    ``unwrapped.state`` for classic-control envs (Pendulum), plus the TimeLimit step count.
    ``meta["exact"]`` is False for an env whose mid-episode state cannot be saved."""
    meta: dict[str, Any] = {"np_random": rng_state(env.unwrapped.np_random)}
    if physics:
        u = env.unwrapped
        meta["exact"] = True
        if hasattr(u, "model") and hasattr(u, "data"):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            buf = np.empty(mujoco.mj_stateSize(u.model, spec), dtype=np.float64)
            mujoco.mj_getState(u.model, u.data, buf, spec)
            arrays[f"{prefix}/mj_state"] = buf
        elif isinstance(getattr(u, "state", None), np.ndarray):
            arrays[f"{prefix}/classic_state"] = np.array(u.state)
        else:
            meta["exact"] = False
        meta["elapsed_steps"] = _time_limit(env)._elapsed_steps
    return meta


def set_env_state(env: Any, prefix: str, meta: dict[str, Any],
                  arrays: dict[str, np.ndarray]) -> bool:
    """Inverse of :func:`env_state`; False if the env's episode could not be restored."""
    set_rng_state(env.unwrapped.np_random, meta["np_random"])
    if "exact" not in meta:
        return True
    u = env.unwrapped
    if f"{prefix}/mj_state" in arrays:
        import mujoco

        mujoco.mj_setState(u.model, u.data, arrays[f"{prefix}/mj_state"],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
    elif f"{prefix}/classic_state" in arrays:
        u.state = np.array(arrays[f"{prefix}/classic_state"])
    else:
        return False
    _time_limit(env)._elapsed_steps = meta["elapsed_steps"]
    return True


def _time_limit(env: Any) -> Any:
    import gymnasium as gym

    w = env
    while not isinstance(w, gym.wrappers.TimeLimit):
        w = w.env
    return w
