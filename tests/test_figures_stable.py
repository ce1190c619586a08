"""Figures change only when the data does: plotting the same results twice gives the same
bytes (no date in the SVGs, salted ids, no date in the PNGs)."""

import json
from pathlib import Path

import pandas as pd

from qprop_tf.rundir import DONE


def _run(results: Path, domain: str, algo: str, seed: int, returns: list[float]) -> None:
    d = results / "table1" / "runs" / domain / algo / f"seed{seed}"  # make_plots' default
    d.mkdir(parents=True)
    steps = [5000 * (i + 1) for i in range(len(returns))]
    pd.DataFrame({"iteration": range(len(steps)), "env_steps": steps,
                  "paper_episodes": [s / 1000 for s in steps],
                  "real_episodes": [s / 500 for s in steps], "average_return": returns,
                  "max_return_so_far": pd.Series(returns).cummax()}).to_csv(
        d / "progress.csv", index=False)
    (d / "config.json").write_text(json.dumps({
        "config": {"algo": algo, "max_steps": steps[-1], "batch_size": 5000},
        "git_commit": "synthetic"}))
    (d / DONE).write_text(json.dumps({"status": "done", "stopped": "budget",
                                      "max_steps": steps[-1], "env_steps": steps[-1]}))


def test_plotting_twice_gives_the_same_bytes(tmp_path):
    from reproduce.plot import make_plots

    results = tmp_path / "results"
    for seed in (0, 1):
        _run(results, "Hopper", "trpo", seed, [10.0 + seed, 300.0, 900.0 - seed])
        _run(results, "Hopper", "qprop-c", seed, [20.0, 500.0 + seed, 1500.0])
    first = {p: p.read_bytes() for p in make_plots(results)}
    assert {p.suffix for p in first} == {".png", ".svg"}
    second = {p: p.read_bytes() for p in make_plots(results)}
    assert sorted(first) == sorted(second)
    changed = [p.name for p in first if first[p] != second[p]]
    assert not changed, f"re-plotting unchanged results rewrote {changed}"


def test_the_curves_band_is_a_bootstrap_ci_of_the_mean():
    import numpy as np
    from scipy.stats import bootstrap

    from reproduce.plot_style import mean_ci

    x = np.array([1.0, 2.0, 3.0, 10.0, 4.0])
    lo, hi = mean_ci(x)
    assert x.min() <= lo < x.mean() < hi <= x.max()
    assert (lo, hi) == mean_ci(x)  # fixed seed: a figure redraws identically
    ref = bootstrap((x,), np.mean, method="percentile", n_resamples=20000, random_state=0)
    assert abs(lo - ref.confidence_interval.low) < 0.5  # scipy's, within resampling noise
    assert abs(hi - ref.confidence_interval.high) < 0.5
    assert mean_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0)
    assert mean_ci(np.array([np.nan, 5.0])) == (5.0, 5.0)  # one seed there: no band
