"""Speed benchmarks (not part of the installed package).

- ``python -m reproduce.bench.speed`` (``make bench``): env.step, the sampler, the TRPO,
  Q-Prop and DDPG loops, the critic's updates; writes results/bench/.
- ``python -m reproduce.bench.peers`` (``make bench-peers``): our TRPO against sb3-contrib's,
  which runs under the peer interpreter as ``reproduce/bench/sb3_trpo_speed.py``.
- ``python -m reproduce.bench.critic``: critic updates/s and the replay's memory at Humanoid
  size; ``python -m reproduce.bench.ddpg``: the DDPG loop per chunk size.
"""

# Before NumPy loads: the package's own thread settings (one BLAS/OpenMP thread unless the
# environment sets them), as every benchmark measures the library as it runs. Inside
# qprop_tf the benchmarks got them from the package's __init__.
import qprop_tf  # noqa: E402, F401
