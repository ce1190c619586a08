"""reproduce.compare (and its numbers, reproduce.compare_stats): censored medians, the ratio's
bootstrap CI, verdicts, and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reproduce import compare as cmp
from reproduce import compare_stats as stats
from reproduce.results import Run

FAST = [90.0, 95.0, 100.0, 105.0, 110.0]
SLOW = [280.0, 290.0, 300.0, 310.0, 320.0]


def _none(n: int) -> list[bool]:
    return [False] * n


def test_clearly_faster_and_slower():
    ratio, lo, hi = stats.ratio_ci(FAST, _none(5), SLOW, _none(5))
    assert ratio == pytest.approx(100 / 300)
    # every resampled median lies within the samples' ranges
    assert 90 / 320 - 1e-9 <= lo <= ratio <= hi <= 110 / 280 + 1e-9
    assert hi < 1
    assert stats.verdict(ratio, lo, hi, 5, 5) == "A faster"
    assert stats.fmt_ratio(ratio, lo, hi, (ratio, ratio)).startswith("0.33 [")
    r2, lo2, hi2 = stats.ratio_ci(SLOW, _none(5), FAST, _none(5))
    assert r2 == pytest.approx(3.0) and lo2 > 1
    assert stats.verdict(r2, lo2, hi2, 5, 5) == "A slower"


def test_identical_distributions_show_no_difference():
    vals = [100.0, 150.0, 200.0, 250.0, 300.0]
    ratio, lo, hi = stats.ratio_ci(vals, _none(5), list(reversed(vals)), _none(5))
    assert ratio == 1.0 and lo < 1 < hi
    assert stats.verdict(ratio, lo, hi, 5, 5) == "no difference shown"
    same = stats.ratio_ci([100.0] * 3, _none(3), [100.0] * 3, _none(3))
    assert same == pytest.approx((1.0, 1.0, 1.0))
    assert stats.verdict(*same, 3, 3) == "no difference shown"


def test_censored_values_count_as_infinity_in_the_median():
    assert stats.censored_median([100, 300, 300], [False, True, True]) == math.inf
    assert stats.median_lower_bound([100, 300, 300], [False, True, True]) == 300
    m = stats.median_ci([100, 300, 300], [False, True, True])
    assert (m.median, m.bound, m.kind) == (math.inf, 300, "bootstrap 95% CI")
    assert m.hi == math.inf and m.lo == pytest.approx(100)
    assert stats.fmt_median(m) == "> 300 [100–∞]"
    assert stats.censored_median([100, 200, 300], [False, False, True]) == 200  # 1 of 3
    assert stats.censored_median([100, 300], [False, True]) == math.inf  # half censored
    two = stats.median_ci([100, 300], [False, True])
    assert stats.fmt_median(two) == "> 200 [100–∞] (min-max)"
    assert stats.fmt_median(stats.median_ci([120.0, 80.0], _none(2))) == "100 [80.0–120] (min-max)"


def test_one_sided_censoring_bounds_the_ratio():
    # A never crossed within 400 episodes (3 seeds); B crossed at 100-120: A is slower.
    a, ac, b = [400.0] * 3, [True] * 3, [100.0, 110.0, 120.0]
    ratio, lo, hi = stats.ratio_ci(a, ac, b, _none(3))
    assert ratio == math.inf and hi == math.inf
    assert lo == pytest.approx(400 / 120)  # the budget over B's largest resampled median
    assert stats.ratio_bounds(a, ac, b, _none(3)) == pytest.approx((400 / 110, math.inf))
    assert stats.verdict(ratio, lo, hi, 3, 3) == "A slower"
    assert stats.fmt_ratio(ratio, lo, hi, stats.ratio_bounds(a, ac, b, _none(3))) == \
        "> 3.64 [3.33–∞]"
    # the mirror image: B censored, A crossed
    ratio, lo, hi = stats.ratio_ci(b, _none(3), a, ac)
    assert (ratio, lo) == (0.0, 0.0) and hi == pytest.approx(120 / 400)
    assert stats.verdict(ratio, lo, hi, 3, 3) == "A faster"
    # a censored seed on the fast side can only widen the CI, never narrow it
    _, lo1, hi1 = stats.ratio_ci(FAST, _none(5), SLOW, _none(5))
    _, lo2, hi2 = stats.ratio_ci(FAST[:4] + [110.0], _none(4) + [True], SLOW, _none(5))
    assert lo2 == pytest.approx(lo1) and hi2 >= hi1


def test_both_censored_is_not_comparable_and_few_seeds_get_no_ci():
    ratio, lo, hi = stats.ratio_ci([100, 500, 500, 500], [False, True, True, True],
                                 [200, 500, 500], [False, True, True])
    assert math.isnan(ratio) and (lo, hi) == (0.0, math.inf)
    assert stats.verdict(ratio, lo, hi, 4, 3) == "not comparable"
    ratio, lo, hi = stats.ratio_ci([100.0, 120.0], _none(2), SLOW, _none(5))
    assert ratio == pytest.approx(110 / 300) and math.isnan(lo) and math.isnan(hi)
    assert stats.verdict(ratio, lo, hi, 2, 5) == "too few seeds"
    assert stats.verdict(*stats.ratio_ci([], [], SLOW, _none(5)), 0, 5) == "too few seeds"


def _run(returns: list[float], done: dict | None, config: dict | None = None) -> Run:
    df = pd.DataFrame({"env_steps": [10000 * (i + 1) for i in range(len(returns))],
                       "average_return": returns})
    return Run("Hopper", "trpo", 0, Path("."), df, "average_return", True, done, None, config)


def test_episodes_to_threshold():
    nan = float("nan")
    crossed = cmp.episodes_to_threshold(_run([1500, nan, 2000, 2500, 3000], None))
    assert crossed == cmp.Crossing(40.0, False)  # > 2000 strictly, NaN row skipped
    assert cmp.episodes_to_threshold(_run([1500, nan, 2500], None)).episodes == 30.0
    never = _run([100, 200, 300], {"stopped": "budget", "max_steps": 30000})
    assert cmp.episodes_to_threshold(never) == cmp.Crossing(30.0, True)
    ended_early = _run([100, 200], None, {"config": {"max_steps": 90000}})
    assert cmp.episodes_to_threshold(ended_early) == cmp.Crossing(20.0, True)
    assert cmp.episodes_to_threshold(_run([100, 200], None)) == cmp.Crossing(20.0, True)
    assert cmp.episodes_to_threshold(_run([100, 200], None), thresh=150).episodes == 20.0


# ---------------------------------------------------------------------- end to end

BUDGET = 600  # episodes


def write_run(results: Path, algo: str, seed: int, cross: float | None,
              done: dict | None = None, log: str | None = None, profile: str = "strong"
              ) -> Path:
    d = results / profile / "runs" / "Hopper" / algo / f"seed{seed}"
    d.mkdir(parents=True)
    episodes = np.arange(10, BUDGET + 1, 10)
    returns = np.where(episodes >= (cross if cross is not None else np.inf), 2500.0, 1000.0)
    pd.DataFrame({"iteration": range(len(episodes)), "env_steps": episodes * 1000,
                  "average_return": returns}).to_csv(d / "progress.csv", index=False)
    (d / "config.json").write_text(json.dumps(
        {"config": {"algo": "trpo", "max_steps": BUDGET * 1000}}))
    if done is not None:
        (d / "DONE").write_text(json.dumps(done))
    if log is not None:
        (d / "log.txt").write_text(log)
    return d


def test_report_end_to_end(tmp_path: Path, capsys):
    ok = {"stopped": "budget"}
    for k, c in enumerate([100, 110, 120, 130, 140]):
        write_run(tmp_path, "fast", k, c, ok)
    for k, c in enumerate([300, 310, 320, 340, None]):
        write_run(tmp_path, "slow", k, c, ok)
    write_run(tmp_path, "fast", 5, 90, None, "[reproduce] Hopper/fast/seed5 on vm pid 1: x\n"
              "Traceback (most recent call last):\n  File \"t.py\"\n"
              "qprop_tf.runtime.NonFiniteError: non-finite value in loss: policy\n")
    write_run(tmp_path, "slow", 6, 50, {"stopped": "crashed"})
    write_run(tmp_path, "slow", 7, 50, None)
    write_run(tmp_path, "other", 0, 50, ok)  # neither A nor B: ignored

    assert cmp.main(["--results", str(tmp_path), "--a", "fast", "--b", "slow"]) == 0
    md_path = tmp_path / "strong" / "compare_fast_vs_slow.md"  # the profile found by its runs
    md = md_path.read_text()
    assert (tmp_path / "strong/figures/compare_fast_vs_slow.png").stat().st_size > 10000
    assert (tmp_path / "strong/figures/compare_fast_vs_slow.svg").is_file()
    assert "Regenerate: `python -m reproduce.compare --results" in md
    assert "--profile strong" in md

    # fast seed 5 diverged (NonFiniteError, no DONE) after crossing at 90: a result, counted
    fast = [100, 110, 120, 130, 140, 90]
    ratio, lo, hi = stats.ratio_ci(fast, _none(6),
                                 [300, 310, 320, 340, BUDGET], _none(4) + [True])
    assert ratio == pytest.approx(115 / 320) and hi < 1
    assert lo == 0  # > 2.5% of resamples draw the censored slow seed 3+ times: unbounded
    a_med = stats.fmt_median(stats.median_ci(fast, _none(6)))
    b_med = stats.fmt_median(stats.median_ci([300, 310, 320, 340, BUDGET], _none(4) + [True]))
    assert a_med.startswith("115 [") and b_med.startswith("320 [")
    row = (f"| Hopper | 2000 | 6/6 | {a_med} | 4/5 (+2 not counted) | {b_med} "
           f"| 0.36 [0–{hi:.2f}] | A faster |")
    assert row in md
    assert ("`Hopper/fast/seed5`: diverged: qprop_tf.runtime.NonFiniteError: non-finite value "
            "in loss: policy (counted: crossed at 90 episodes before it)") in md
    assert "`Hopper/slow/seed6`: failed: DONE has stopped='crashed'" in md
    assert "`Hopper/slow/seed7`: unfinished" in md
    assert "Hopper/other" not in md and "0/0" not in md
    out = capsys.readouterr().out
    assert "A faster" in out and f"wrote {md_path}" in out

    rows, _ = cmp.compare(tmp_path, "slow", "fast")
    assert [r.verdict for r in rows] == ["A slower"]
    assert rows[0].b.values.tolist() == [100, 110, 120, 130, 140, 90]
    assert rows[0].a.censored.tolist() == [False] * 4 + [True]


def test_cli_rejects_an_unknown_domain(tmp_path: Path):
    with pytest.raises(SystemExit):
        cmp.main(["--results", str(tmp_path), "--a", "x", "--b", "y", "--domains", "Nope"])


def test_profile_trees_are_kept_apart(tmp_path: Path, capsys):
    ok = {"stopped": "budget"}
    for k in range(3):
        write_run(tmp_path, "fast", k, 100, ok)  # strong's tree
        write_run(tmp_path, "slow", k, 300, ok, profile="ablation")
    # A and B in two trees: the default cannot choose, and says so.
    assert cmp.main(["--results", str(tmp_path), "--a", "fast", "--b", "slow"]) == 2
    assert "several profiles' trees (ablation, strong)" in capsys.readouterr().err
    rows, _ = cmp.compare(tmp_path, "fast", "slow", profile="strong")
    assert (len(rows[0].a.runs), len(rows[0].b.runs)) == (3, 0)  # ablation's not read
    assert cmp.main(["--results", str(tmp_path), "--a", "x", "--b", "y"]) == 2
    assert "no runs of x or y" in capsys.readouterr().err
    assert cmp.main(["--results", str(tmp_path), "--profile", "nope", "--a", "fast",
                     "--b", "slow"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_b_from_another_profiles_tree(tmp_path: Path, capsys):
    """--profile-b reads B's runs from a second tree (the same cells under two profiles, as
    `truncation` against `bestbatch`); the same algorithm may then be A and B, and the report
    names the rules that differ between the profiles."""
    ok = {"stopped": "budget"}
    fast, slow = [100.0, 110.0, 120.0, 130.0, 140.0], [300.0, 310.0, 320.0, 330.0, 340.0]
    for k in range(5):
        write_run(tmp_path, "fast", k, fast[k], ok)                       # strong's tree
        write_run(tmp_path, "fast", k, slow[k], ok, profile="ablation")   # same name, slower
    rows, _ = cmp.compare(tmp_path, "fast", "fast", profile="strong", profile_b="ablation")
    assert rows[0].a.values.tolist() == fast and rows[0].b.values.tolist() == slow
    assert rows[0].verdict == "A faster"
    rows, _ = cmp.compare(tmp_path, "fast", "fast", profile="strong")  # one tree: same runs
    assert rows[0].a.values.tolist() == rows[0].b.values.tolist() == fast
    assert cmp.main(["--results", str(tmp_path), "--profile", "strong", "--profile-b",
                     "ablation", "--a", "fast", "--b", "fast", "--out", "x.md"]) == 0
    md = (tmp_path / "strong" / "x.md").read_text()
    assert "--profile-b ablation" in md
    assert "A's runs from `strong`'s tree, B's from `ablation`'s." in md
    assert "budget_cap: 2000 in strong, 30000 in ablation" in md
    assert "A faster" in capsys.readouterr().out


def test_the_return_after_a_crossing_tells_a_spike_from_a_policy_at_the_threshold(tmp_path):
    """One lucky batch above the threshold, then back down: the crossing counts (the paper's
    rule), and the mean return from it to the run's end says it was a spike."""
    spike = write_run(tmp_path, "spike", 0, None, {"stopped": "early"})
    df = pd.read_csv(spike / "progress.csv")
    df["average_return"] = np.where(df.env_steps == 200_000, 2500.0, 1000.0)
    df.to_csv(spike / "progress.csv", index=False)
    write_run(tmp_path, "held", 0, 200, {"stopped": "early"})  # 2500 from 200 episodes on
    runs = {r.algo: r for r in cmp.counted_runs(tmp_path, "strong", {"spike", "held"}).runs}
    assert cmp.episodes_to_threshold(runs["spike"]).episodes == 200
    n_after = (df.env_steps >= 200_000).sum()
    assert cmp.return_after_crossing(runs["spike"]) == pytest.approx(
        (2500 + 1000 * (n_after - 1)) / n_after)
    assert cmp.return_after_crossing(runs["held"]) == 2500
    write_run(tmp_path, "never", 0, None, {"stopped": "budget"})
    never = cmp.counted_runs(tmp_path, "strong", {"never"}).runs[0]
    assert math.isnan(cmp.return_after_crossing(never))
