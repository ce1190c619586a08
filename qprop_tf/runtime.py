"""Process-level setup: thread counts, seeding, versions, finiteness guard."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from qprop_tf.errors import NonFiniteError


def limit_threads(n: int = 1) -> None:
    """One intra-op and one inter-op TF thread (and BLAS threads) unless told otherwise.

    Must run before TF executes its first op; sweeps parallelise across runs instead.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        # TF was already initialised in this process (e.g. several runs in one pytest
        # session); the first setting stays in force.
        pass


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TF (Keras initialisers draw from this global seed)."""
    import keras

    keras.utils.set_random_seed(seed)


def versions() -> dict[str, str]:
    import gymnasium
    import keras
    import mujoco
    import tensorflow as tf
    import tensorflow_probability as tfp

    return {"tensorflow": tf.__version__, "tensorflow_probability": tfp.__version__,
            "keras": keras.__version__, "gymnasium": gymnasium.__version__,
            "mujoco": mujoco.__version__, "numpy": np.__version__}


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10)
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def check_finite(where: str, values: dict[str, float], arrays: list[np.ndarray] = ()) -> None:
    bad = [k for k, v in values.items() if not np.isfinite(v)]
    if any(not np.all(np.isfinite(a)) for a in arrays):
        bad.append("parameters")
    if bad:
        raise NonFiniteError(f"non-finite value in {where}: {', '.join(bad)}")
