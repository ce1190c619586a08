import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from qprop_tf.runtime import import_tensorflow  # noqa: E402  (without TF's start-up lines)

tf = import_tensorflow()

try:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass
