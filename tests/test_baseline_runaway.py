"""The baseline-runaway flag (issue 15's grid): the critic's divergence rule on advantage_std."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.baseline_runaway import main, runaway, runaways
from reproduce.results import Run


def _run(seed: int, std: np.ndarray, tmp_path: Path) -> Run:
    it = np.arange(std.size)
    df = pd.DataFrame({"iteration": it, "env_steps": (it + 1) * 1000, "advantage_std": std})
    return Run(domain="Swimmer", algo="trpo-b1000", seed=seed, path=tmp_path,
               progress=df, metric="average_return", finished=True)


def test_a_runaway_is_flagged_and_growth_with_the_returns_is_not(tmp_path: Path):
    healthy = np.geomspace(1.0, 67.0, 200)  # as Walker's std grows with its return
    blown = np.concatenate([np.full(50, 0.5), 0.5 * 10.0 ** np.arange(1, 31)])
    assert runaway(_run(0, healthy, tmp_path)) is None
    r = runaway(_run(1, blown, tmp_path))
    assert r is not None and r.seed == 1
    assert r.first_episodes == 53  # 0.5e3 > 100 x 0.5 at iteration 52 (53,000 steps)
    assert r.flagged == 28 and r.largest == 0.5e30 and r.early == 0.5
    assert "s1 (0.5 -> 5e+29 from 53 ep, 28 it)" == r.text()
    no_column = _run(2, healthy, tmp_path)
    no_column.progress = no_column.progress.drop(columns="advantage_std")
    assert runaway(no_column) is None
    assert [x.seed for x in runaways([_run(3, blown, tmp_path), _run(0, healthy, tmp_path),
                                      _run(1, blown, tmp_path)])] == [1, 3]


def test_the_command_lists_flagged_runs_under_a_root(tmp_path: Path, capsys):
    for seed, std in ((0, np.full(30, 2.0)), (1, np.r_[np.full(10, 2.0), 1e6, 2.0])):
        d = tmp_path / "bestbatch" / "runs" / "Swimmer" / "trpo-b1000" / f"seed{seed}"
        d.mkdir(parents=True)
        it = np.arange(std.size)
        pd.DataFrame({"iteration": it, "env_steps": (it + 1) * 1000, "average_return": 1.0,
                      "advantage_std": std}).to_csv(d / "progress.csv", index=False)
    assert main(["--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bestbatch/Swimmer/trpo-b1000: s1 (2 -> 1e+06 from 11 ep, 1 it)" in out
    assert "s0" not in out and "2 runs read" in out
