"""OpenBLAS's kernels are pinned by instruction set, over the environment's choice, so that CPUs
with the same instruction set give the same curve (``qprop_tf.blas_coretype``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qprop_tf import AVX512_FLAGS, blas_coretype
from qprop_tf.runtime import machine, openblas_core

ROOT = Path(__file__).resolve().parent.parent


def test_the_kernels_follow_the_instruction_set():
    assert blas_coretype(set(AVX512_FLAGS) | {"avx2", "fma", "sse4_2"}) == "SkylakeX"
    assert blas_coretype({"avx2", "fma", "avx512f"}) == "Haswell"  # not all of AVX-512
    assert blas_coretype({"avx2", "sse4_2"}) is None  # no FMA: OpenBLAS chooses
    assert blas_coretype(set()) is None


def _core_in_fresh_python(env: dict[str, str], first: str = "qprop_tf") -> str:
    code = (f"import {first}\nimport qprop_tf\nfrom qprop_tf.runtime import openblas_core\n"
            "print(openblas_core())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(openblas_core() == "unknown", reason="NumPy's OpenBLAS not found")
def test_the_pin_overrides_the_environment_and_a_run_records_it():
    wanted = os.environ["OPENBLAS_CORETYPE"]  # set by qprop_tf before this process's NumPy
    assert openblas_core() == wanted and machine()["openblas"] == wanted
    other = "Haswell" if wanted != "Haswell" else "Sandybridge"
    env = {**os.environ, "OPENBLAS_CORETYPE": other}
    env.pop("QPROP_TF_OPENBLAS_CORETYPE", None)
    assert _core_in_fresh_python(env) == wanted
    # NumPy loaded first: the pin comes too late for this process
    assert _core_in_fresh_python(env, first="numpy") == other
    # asked for: the environment's choice stands
    assert _core_in_fresh_python({**env, "QPROP_TF_OPENBLAS_CORETYPE": "system"}) == other
