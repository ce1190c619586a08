"""qprop-tf: a reference reproduction of Q-Prop (Gu et al., ICLR 2017) in TensorFlow 2 / Keras."""

import os as _os

AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
"""What OpenBLAS's SkylakeX kernels need."""


def blas_coretype(cpu_flags: set[str] | frozenset[str]) -> str | None:
    """The OpenBLAS kernels a run pins (``OPENBLAS_CORETYPE``) on a CPU with ``cpu_flags``:
    SkylakeX with AVX-512, Haswell with AVX2 and FMA, else none (OpenBLAS's own choice).

    OpenBLAS picks its kernels by CPU model, not by instruction set, and the two differ in
    round-off: a Xeon took SkylakeX's and a Zen 5 EPYC, with the same AVX-512, Haswell's, and
    that was the whole difference between their runs (the five ``test_identical_behaviour``
    runs agree bit for bit once it is pinned). Pinned by instruction set, every AVX-512 CPU
    gives the same curve for the same seed. ``QPROP_TF_OPENBLAS_CORETYPE`` overrides it (a
    core name, or ``system`` for whatever the environment or OpenBLAS chooses).
    """
    if AVX512_FLAGS <= cpu_flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= cpu_flags:
        return "Haswell"
    return None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# Set before NumPy or TF load. One BLAS/OpenMP thread per run: sweeps parallelise across runs,
# and a multi-threaded OpenBLAS next to a busy core spins (a 5000x38 Gram matrix took 160 ms
# instead of 0.3 ms here). OpenBLAS's kernels pinned by instruction set (``blas_coretype``),
# over the environment's OPENBLAS_CORETYPE (a machine here sets Haswell on an AVX-512 CPU).
# Quiet TF's C++ start-up chatter on a CPU-only machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
_core = _os.environ.get("QPROP_TF_OPENBLAS_CORETYPE") or blas_coretype(_cpu_flags())
if _core is not None and _core != "system":
    _os.environ["OPENBLAS_CORETYPE"] = _core
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
