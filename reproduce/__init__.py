"""The reproduction harness: sweep Table 1's runs, tabulate them beside the paper, plot.

- ``python -m reproduce.sweep``: run domains x algorithms x seeds (local pool or Ray).
- ``python -m reproduce.table``: Table 1 from ``results/runs``, beside the published numbers.
- ``python -m reproduce.plot``: learning curves and Q-Prop diagnostics.

Configs: ``reproduce/configs/*.toml``; published numbers: ``reproduce/published.csv``.
"""
