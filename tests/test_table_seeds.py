"""reproduce.table_seeds: Table 1 seed by seed, the same runs and crossings as the table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from reproduce.table import write_table
from tests.test_reproduce import synthetic, write_run  # noqa: F401 (the fixture)


def _row(df: pd.DataFrame, domain: str, algo: str, seed: int) -> pd.Series:
    sel = df[(df.domain == domain) & (df.algo == algo) & (df.seed == seed)]
    assert len(sel) == 1, (domain, algo, seed)
    return sel.iloc[0]


def test_every_counted_run_is_a_row_with_the_tables_crossing(synthetic):  # noqa: F811
    table = write_table(synthetic, "quick", echo=False)
    seeds = pd.read_csv(synthetic / "quick/seeds.csv")
    # the same runs as the table counts (the unfinished Swimmer DDPG is in neither)
    assert len(seeds) == int(table.seeds_run.sum())
    assert not ((seeds.domain == "Swimmer") & (seeds.algo == "ddpg")).any()
    # Hopper TR-c-Q-Prop crosses at 10, 20, 30 episodes: the cell's median is the middle one
    got = sorted(seeds[(seeds.domain == "Hopper") & (seeds.algo == "qprop-c")].cross_episodes)
    assert got == [10, 20, 30]
    assert table[(table.domain == "Hopper") & (table.algo == "qprop-c")].episodes_median.item() \
        == 20
    # DDPG reads its evaluation return (crossing at 2 episodes), not the training return
    ddpg = _row(seeds, "Hopper", "ddpg", 0)
    assert ddpg.crossed and ddpg.cross_episodes == 2 and ddpg.max_return == 2600
    assert ddpg.last_return == pytest.approx((100 + 2100 + 2600 + 2000) / 4)
    never = _row(seeds, "Hopper", "trpo", 0)
    assert not never.crossed and math.isnan(never.cross_episodes)
    assert never.ended_by == "budget" and never.end_episodes == 30000
    assert _row(seeds, "Swimmer", "qprop-c", 0).ended_by == "early stop"
    # order: Table 1's domains, its columns before the extra rows, then seeds
    hopper = seeds[seeds.domain == "Hopper"]
    assert list(dict.fromkeys(hopper.algo)) == ["qprop-c", "trpo", "ddpg", "vpg"]
    md = (synthetic / "quick/seeds.md").read_text()
    assert "| Hopper | 2,000 | TRPO | 0 | not crossed in 30,000 |" in md
    assert "| Hopper | 2,000 | TR-c-Q-Prop | 0 | 10.0 |" in md


def test_cost_cpu_and_commit_come_from_the_runs_own_files(tmp_path):
    results = tmp_path / "results"
    d = write_run(results, "Hopper", "trpo", 0, [5, 10], [100, 2500], stopped="early")
    prog = pd.read_csv(d / "progress.csv")
    prog["cpu_time"] = [1800.0, 5400.0]
    prog["max_rss_mb"] = [1500.0, 2345.6]
    prog.to_csv(d / "progress.csv", index=False)
    cfg = json.loads((d / "config.json").read_text())
    cfg |= {"git_commit": "abcdef0123", "machines": [{"cpu": "AMD EPYC"}, {"cpu": "Xeon"}]}
    (d / "config.json").write_text(json.dumps(cfg))
    write_run(results, "Hopper", "trpo", 1, [5, 10], [100, 200])  # no cpu_time, no machines
    write_table(results, "quick", echo=False)
    seeds = pd.read_csv(results / "quick/seeds.csv")
    first, second = _row(seeds, "Hopper", "trpo", 0), _row(seeds, "Hopper", "trpo", 1)
    assert first.cpu_hours == 1.5 and first.cpu == "AMD EPYC + Xeon" and first.commit == "abcdef0"
    assert first.peak_rss_mb == 2345.6
    assert math.isnan(second.cpu_hours) and math.isnan(second.peak_rss_mb)
    assert first.path == "quick/runs/Hopper/trpo/seed0"  # under the results root
    md = (results / "quick/seeds.md").read_text()
    assert "| 1.50 | 2,346 | AMD EPYC + Xeon | abcdef0 |" in md
    assert "| - | - | unrecorded | synthet |" in md


def test_no_finished_run_writes_a_file_that_says_so(tmp_path):
    write_table(tmp_path / "nothing", echo=False)
    assert "No finished runs yet." in (tmp_path / "nothing/table1/seeds.md").read_text()


def test_held_crossing_needs_the_window_mean_above_the_threshold():
    """One lucky row crosses but does not hold; a row's weight is the episodes it averages;
    nothing holds before a whole window of env steps has run."""
    import numpy as np

    from reproduce.run_stats import held_crossing

    t = np.arange(5_000, 200_001, 5_000)
    ones = np.ones_like(t, dtype=float)
    lucky = np.where(t == 50_000, 100.0, -100.0)
    assert math.isnan(held_crossing(t, lucky, ones, 10.0))  # crossed at 50k, never held
    steady = np.where((t == 50_000) | (t >= 100_000), 100.0, -100.0)
    # at 110k the last 25k steps are 2 rows below, 3 above: mean 20 > 10 (105k: -20)
    assert held_crossing(t, steady, ones, 10.0) == 110_000
    heavy = ones.copy()
    heavy[t == 50_000] = 9.0  # a batch of 9 episodes at 100 against 4 single ones at -100
    assert held_crossing(t, lucky, heavy, 10.0) == 50_000
    assert held_crossing(t, np.full(len(t), 100.0), ones, 10.0) == 25_000  # a whole window
    assert held_crossing(t, lucky, ones, 10.0, window=5_000) == 50_000  # one row: the paper's


def test_seeds_md_says_whether_a_crossing_held(synthetic):  # noqa: F811
    write_table(synthetic, "quick", echo=False)
    seeds = pd.read_csv(synthetic / "quick/seeds.csv")
    md = (synthetic / "quick/seeds.md").read_text()
    assert "Held from (episodes, 25k-step mean)" in md
    never = _row(seeds, "Hopper", "trpo", 0)
    assert not never.crossed and math.isnan(never.held_episodes)
    crossed = seeds[seeds.crossed]
    assert len(crossed) and (crossed.held_episodes.dropna() >= crossed.cross_episodes.loc[
        crossed.held_episodes.dropna().index]).all()  # a hold never precedes the crossing
    # Hopper's seed 1 crossed at 20 and never held in the 29,980 episodes after
    assert "| Hopper | 2,000 | TR-c-Q-Prop | 1 | 20.0 | no |" in md
    assert "| TR-c-Q-Prop | 4 | 3 | 1 | 0 |" in md  # Hopper 0-2 and Swimmer 0 crossed
