"""Process-level setup: a quiet TF import, thread counts, seeding, versions, finiteness guard."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from qprop_tf.errors import NonFiniteError

STARTUP_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:. ]+\d+ (port\.cc:\d+\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers))")
"""TF's start-up lines: absl's notice and two INFO lines, printed at library load (twice:
two libraries) before ``TF_CPP_MIN_LOG_LEVEL`` is read, so that variable cannot hide them."""


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` without its start-up lines (:data:`STARTUP_CHATTER`).

    Whatever else TF writes to stderr while it loads (a real warning or error) is passed on.
    The oneDNN notice is only hidden: ``TF_ENABLE_ONEDNN_OPTS`` is left alone (setting it
    changes the round-off, see the README's "Determinism").
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not STARTUP_CHATTER.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
    return tf


def limit_threads(n: int = 1) -> None:
    """One intra-op and one inter-op TF thread (and BLAS threads) unless told otherwise.

    Must run before TF executes its first op; sweeps parallelise across runs instead.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    tf = import_tensorflow()

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


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def openblas_core() -> str:
    """The kernels NumPy's OpenBLAS runs (its ``get_corename``; ``OPENBLAS_CORETYPE`` pins them
    when it is set before NumPy loads, see ``qprop_tf.blas_coretype``), or ``unknown``."""
    libs = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("*openblas*.so*"))
    for lib in libs:
        try:
            handle = ctypes.CDLL(str(lib))
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(handle, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "unknown"


def machine() -> dict[str, Any]:
    """What the run ran on: the CPU model, its core count, OpenBLAS's kernels, the OS and
    Python. Round-off can differ between CPUs and kernels (the README's "Determinism"), so a
    run records where it was made."""
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0, "openblas": openblas_core(),
            "platform": platform.platform(), "python": platform.python_version()}


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
