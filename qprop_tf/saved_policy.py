"""A run's trained policy in one small file, ``policy.npz``, and its noise-free action.

At the end of training :func:`qprop_tf.run.train` saves the policy into the run directory
(:func:`save_policy`): the Gaussian policy's mean network and log-std for trpo, vpg and the
Q-Prop algos, the deterministic actor for DDPG. The file is a plain ``.npz`` (no pickle):

    format, kind ("gaussian" | "deterministic"), env_id
    activations: one name per dense layer (tanh, relu, linear)
    w0, b0, w1, b1, ...: the dense layers' kernels and biases, input to output (float32)
    center, scale: the action is center + scale * (the last layer's output)
    log_std (gaussian only); low, high: the action space's bounds

so :func:`load_policy` needs NumPy only: no TensorFlow, no training code, no checkpoint.
:meth:`SavedPolicy.mean` computes what the training run's NumPy mirror computed (float64,
the same operations in the same order), and :meth:`SavedPolicy.act` clips it to the bounds
as the sampler does. The policies act on raw observations (no normalisation statistics).
A Hopper policy is 35 KB (7,603 float32 parameters), Humanoid's about 170 KB.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qprop_tf.checkpoint import write_bytes_durably
from qprop_tf.errors import PolicyFileError

POLICY_FILE = "policy.npz"
FORMAT = "qprop-tf-policy/1"
KINDS = ("gaussian", "deterministic")
ACTIVATIONS = ("tanh", "relu", "linear")


def activate(h: np.ndarray, activation: str) -> np.ndarray:
    """A dense layer's activation (tanh, relu or linear), in place; returns h."""
    if activation == "tanh":
        np.tanh(h, out=h)
    elif activation == "relu":
        np.maximum(h, 0.0, out=h)
    return h


@dataclass(frozen=True)
class SavedPolicy:
    """A feed-forward policy as plain arrays: dense layers, then center + scale * output."""

    kind: str
    env_id: str
    layers: tuple[tuple[np.ndarray, np.ndarray, str], ...]
    center: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    log_std: np.ndarray | None = None

    @property
    def obs_dim(self) -> int:
        return int(self.layers[0][0].shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.center.shape[0])

    @property
    def n_params(self) -> int:
        return sum(w.size + b.size for w, b, _ in self.layers)

    @property
    def bounded(self) -> bool:
        """Whether the output layer is a tanh (DDPG's actor): it can saturate."""
        return self.layers[-1][2] == "tanh"

    def preactivation(self, obs: np.ndarray) -> np.ndarray:
        """z = W_L h_{L-1} + b_L, the output layer before its activation, in float64."""
        h = np.asarray(obs, dtype=np.float64)
        for i, (w, b, activation) in enumerate(self.layers):
            h = h @ w.astype(np.float64)
            h += b.astype(np.float64)
            if i == len(self.layers) - 1:
                break
            activate(h, activation)
        return h

    def mean(self, obs: np.ndarray) -> np.ndarray:
        """The noise-free action before clipping (the Gaussian's mean, the actor's output)
        for one observation [obs_dim] or a batch [N, obs_dim], in float64:
        center + scale * f_L(z), z = :meth:`preactivation`."""
        h = activate(self.preactivation(obs), self.layers[-1][2])
        return self.center.astype(np.float64) + self.scale.astype(np.float64) * h

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The noise-free action clipped to the action space's bounds."""
        return np.minimum(np.maximum(self.mean(obs), self.low), self.high)


def policy_path(path: str | Path) -> Path:
    """``path`` itself if it is a file, else ``path/policy.npz`` (a run directory)."""
    path = Path(path)
    return path if path.is_file() or path.suffix == ".npz" else path / POLICY_FILE


def to_env_bounds(spec: dict[str, Any], low: np.ndarray, high: np.ndarray,
                  env_low: np.ndarray, env_high: np.ndarray) -> dict[str, Any]:
    """``spec`` (``model.export()``, acting in [low, high]) re-expressed in the env's own
    bounds: the linear map a -> env_mid + env_half (a - mid) / half folded into the output's
    center and scale (and the log-std), so the saved policy acts on the raw env, and clipping
    to the env's bounds is clipping to [low, high] mapped (the map is increasing)."""
    ratio = (env_high - env_low) / (high - low)
    out = dict(spec)
    out["center"] = (env_low + env_high) / 2 + ratio * (np.asarray(spec["center"], np.float64)
                                                        - (low + high) / 2)
    out["scale"] = ratio * np.asarray(spec["scale"], np.float64)
    if spec.get("log_std") is not None:
        out["log_std"] = np.asarray(spec["log_std"], np.float64) + np.log(ratio)
    return out


def save_policy(model: Any, path: str | Path, env_id: str, low: Sequence[float] | np.ndarray,
                high: Sequence[float] | np.ndarray,
                env_bounds: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write ``model.export()`` (a :class:`~qprop_tf.policy.GaussianMLPPolicy` or a
    :class:`~qprop_tf.actor.DeterministicActor`) to ``path`` (a run directory or a
    ``.npz`` file), atomically; return the file's path. ``env_bounds``: the env's own
    bounds when the model acted in others (``action_scale=unit``): the file then holds the
    policy in the env's bounds (:func:`to_env_bounds`)."""
    spec = model.export()
    if spec["kind"] not in KINDS:
        raise ValueError(f"unknown policy kind {spec['kind']!r}")
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if env_bounds is not None and not (np.array_equal(env_bounds[0], low)
                                       and np.array_equal(env_bounds[1], high)):
        env_low, env_high = (np.asarray(b, np.float64) for b in env_bounds)
        spec = to_env_bounds(spec, low, high, env_low, env_high)
        low, high = env_low, env_high
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "kind": np.array(spec["kind"]), "env_id": np.array(env_id),
        "activations": np.array([act for _, _, act in spec["layers"]]),
        "center": np.asarray(spec["center"], np.float32),
        "scale": np.asarray(spec["scale"], np.float32),
        "low": np.asarray(low, np.float64), "high": np.asarray(high, np.float64)}
    for i, (w, b, act) in enumerate(spec["layers"]):
        if act not in ACTIVATIONS:
            raise ValueError(f"layer {i}: unsupported activation {act!r}")
        arrays[f"w{i}"], arrays[f"b{i}"] = np.asarray(w), np.asarray(b)
    if spec.get("log_std") is not None:
        arrays["log_std"] = np.asarray(spec["log_std"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    out = policy_path(path)
    write_bytes_durably(out, buffer.getvalue())
    return out


def load_policy(path: str | Path) -> SavedPolicy:
    """The policy saved in a run directory (or a ``policy.npz`` path); raises
    :class:`~qprop_tf.errors.PolicyFileError` when there is none, or the file is not one."""
    file = policy_path(path)
    if not file.is_file():
        where = Path(path)
        if not where.exists():
            raise PolicyFileError(f"no such run directory: {where}")
        raise PolicyFileError(f"no saved policy in {where} (no {POLICY_FILE}; runs finished "
                              f"before policies were saved have none)")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays["format"]) != FORMAT:
            raise PolicyFileError(f"{file}: unknown format {str(arrays['format'])!r}")
        activations = [str(a) for a in arrays["activations"]]
        layers = tuple((arrays[f"w{i}"], arrays[f"b{i}"], act)
                       for i, act in enumerate(activations))
        return SavedPolicy(kind=str(arrays["kind"]), env_id=str(arrays["env_id"]),
                           layers=layers, center=arrays["center"], scale=arrays["scale"],
                           low=arrays["low"], high=arrays["high"],
                           log_std=arrays.get("log_std"))
    except PolicyFileError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise PolicyFileError(f"{file}: not a saved policy ({exc})") from exc
