"""The reproduction harness: sweep Table 1's runs, tabulate them beside the paper, plot.

- ``python -m reproduce.sweep``: run domains x algorithms x seeds (local pool or Ray).
- ``python -m reproduce.table``: Table 1 from a profile's runs (``results/<profile>/runs``),
  beside the published numbers, in ``results/<profile>/table.md``.
- ``python -m reproduce.plot``: learning curves and Q-Prop diagnostics
  (``results/<profile>/figures``).

Configs: ``reproduce/configs/*.toml``; published numbers: ``reproduce/published.csv``.
"""

import qprop_tf  # noqa: F401, E402  (thread counts and OpenBLAS's kernels, before NumPy loads)
