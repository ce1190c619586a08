"""qprop-tf: a reference reproduction of Q-Prop (Gu et al., ICLR 2017) in TensorFlow 2 / Keras."""

import os as _os

# Quiet TF's C++ start-up chatter (CUDA probing on a CPU-only machine). Set before TF loads.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
