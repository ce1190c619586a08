"""reproduce.stability: divergences per variant, the mechanism window, crossings during a
divergence, and the report read across two profiles' trees."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reproduce import stability as st
from reproduce import stability_runs as sr
from reproduce.results import load_runs

N = 40  # iterations of 5000 steps (5 episodes each)


def write_run(results: Path, profile: str, algo: str, seed: int, *, blow_up: int | None,
              cross: int | None, oob: float = 0.3) -> Path:
    """A finished Swimmer run: TD loss 0.1 until iteration ``blow_up`` then 1e4; return 120
    (above Swimmer's 90) from iteration ``cross`` on; out-of-bounds share ``oob``, 0.9 in
    the 3 iterations before the blow-up."""
    d = results / profile / "runs" / "Swimmer" / algo / f"seed{seed}"
    d.mkdir(parents=True)
    it = np.arange(N)
    loss = np.where(it >= (blow_up if blow_up is not None else N), 1e4, 0.1)
    frac = np.full(N, oob)
    if blow_up is not None:
        frac[blow_up - 3:blow_up] = 0.9
    df = pd.DataFrame({
        "iteration": it, "env_steps": (it + 1) * 5000, "batch_steps": 5000,
        "average_return": np.where(it >= (cross if cross is not None else N), 120.0, 30.0),
        "critic_loss": loss, "critic_mean_q": np.where(loss > 1, -5e3, 20.0),
        "critic_oob_fraction": frac, "critic_max_abs_mu": 2.0 + frac,
        "critic_target_max_abs": 10.0, "critic_target_oob_max_abs": 10.0 * frac,
        "time": (it + 1) * 2.0, "cpu_time": (it + 1) * 1.5,
        "policy_std": np.linspace(1.0, 0.5 if algo.startswith("trpo") else 0.9, N)})
    if algo.startswith("trpo"):  # also a run from before cpu_time: its wall time counts
        df = df.drop(columns=[c for c in df.columns if c.startswith("critic_") or c == "cpu_time"])
    df.to_csv(d / "progress.csv", index=False)
    (d / "config.json").write_text(json.dumps(
        {"config": {"algo": "trpo" if algo.startswith("trpo") else "qprop-c",
                    "max_steps": N * 5000}}))
    (d / "DONE").write_text(json.dumps({"stopped": "budget"}))
    return d


def test_run_record_flags_the_divergence_and_a_crossing_inside_it(tmp_path: Path):
    write_run(tmp_path, "stable", "qprop-c", 0, blow_up=20, cross=25)
    write_run(tmp_path, "stable", "qprop-c", 1, blow_up=None, cross=10)
    runs = {r.seed: r for r in load_runs(tmp_path, "stable").runs}
    bad, good = sr.run_stability(runs[0]), sr.run_stability(runs[1])
    assert bad.diverged and bad.first_diverged_steps == 21 * 5000
    assert bad.crossed_during_divergence and bad.max_loss == 1e4 and bad.max_abs_q == 5e3
    assert not good.diverged and math.isnan(good.first_diverged_steps)
    assert not good.crossed_during_divergence and good.iterations == N
    # the mechanism window: the 10 iterations before the first flag (3 of them at 0.9)
    m = st.mechanism(runs[0])
    assert m.diverged and m.window == "10 before iteration 20"
    assert m.oob_fraction == 0.3 and m.target_oob_max_abs == 3.0
    m3 = st.mechanism(runs[0], window=3)
    assert m3.oob_fraction == 0.9 and m3.max_abs_mu == 2.9
    assert st.mechanism(runs[1]).window == "last 10 (no divergence)"


def test_report_counts_divergences_per_variant_and_compares_on_shared_seeds(
        tmp_path: Path, capsys):
    for s in range(3):  # the authors' critic: diverges on seeds 0 and 1, crosses late
        write_run(tmp_path, "strong", "base", s, blow_up=15 if s < 2 else None, cross=35)
        write_run(tmp_path, "strong", "ref", s, blow_up=None, cross=20)
        write_run(tmp_path, "stable-strong", "qprop-fix", s, blow_up=None, cross=10)
    write_run(tmp_path, "strong", "base", 3, blow_up=None, cross=35)  # no fix on seed 3
    code = st.main(["--results", str(tmp_path), "--profile", "stable-strong",
                    "--baseline", "base", "--reference", "ref",
                    "--baseline-profile", "strong"])
    assert code == 0
    md = (tmp_path / "stable-strong" / "stability.md").read_text()
    assert "| base | 4 | 2/4 (seeds 0, 1) |" in md
    assert "| qprop-fix | 3 | 0/3 (seeds none) |" in md
    # fewer divergences on the shared seeds 0-2 (0/3 against 2/3): Fisher p = C(4,3)/C(6,3)
    assert st.fewer_divergences_p(*_variants(tmp_path)) == pytest.approx(0.2)
    # the fix against the baseline on the seeds both have (0-2): 55 vs 180 episodes
    assert "on seeds 0, 1, 2: variant faster" in md
    assert "ref (reference)" in md
    assert "| base | 0 | yes | 10 before iteration 15 | 30.0% |" in md  # mechanism rows
    assert "| qprop-fix | 2 | no | last 10 (no divergence) |" in md
    assert (tmp_path / "stable-strong/figures/stability_Swimmer.png").stat().st_size > 10000
    assert "--baseline-profile strong" in md
    assert "wrote" in capsys.readouterr().out


def _variants(results: Path) -> tuple[st.Variant, st.Variant]:
    from reproduce.compare import counted_runs

    runs = (counted_runs(results, "stable-strong", {"qprop-fix"}).runs
            + counted_runs(results, "strong", {"base", "ref"}).runs)
    vs = {v.algo: v for v in st.domain_variants(runs, {}, "Swimmer", "base", "ref")}
    return vs["qprop-fix"], vs["base"]


def test_fisher_p_counts_only_shared_seeds():
    def variant(algo: str, diverged: list[bool]) -> st.Variant:
        recs = [sr.RunStability(k, 10, d, math.nan, 1.0, 1.0, False)
                for k, d in enumerate(diverged)]
        return st.Variant(algo, [], 0, recs, None, None)

    base = variant("base", [True] * 5)
    assert st.fewer_divergences_p(variant("fix", [False] * 5), base) < 0.01  # 0/5 vs 5/5
    assert st.fewer_divergences_p(variant("same", [True] * 5), base) == 1.0
    assert math.isnan(st.fewer_divergences_p(base, base))
    assert st.fewer_divergences_p(variant("one", [False]), base) == 0.5  # 1 shared seed

    def losses(algo: str, peaks: list[float]) -> st.Variant:
        recs = [sr.RunStability(k, 10, False, math.nan, x, 1.0, False)
                for k, x in enumerate(peaks)]
        return st.Variant(algo, [], 0, recs, None, None)

    big = losses("base", [1e8, 1e9, 3e8, 2e9, 5e7])
    assert st.smaller_losses_p(losses("fix", [0.3, 274, 0.2, 83, 0.4]), big) == \
        pytest.approx(1 / 252)  # every one below: the smallest p of 5 against 5
    assert st.smaller_losses_p(big, losses("fix", [0.3] * 5)) > 0.99
    assert math.isnan(st.smaller_losses_p(big, big))


def test_unknown_profile_is_a_clean_error(tmp_path: Path, capsys):
    assert st.main(["--results", str(tmp_path), "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def _with_returns(d: Path, returns: np.ndarray) -> None:
    df = pd.read_csv(d / "progress.csv")
    df["average_return"] = returns
    df.to_csv(d / "progress.csv", index=False)


def test_after_peak_keeps_the_share_of_the_best_and_compares_it_with_the_baseline(
        tmp_path: Path):
    it = np.arange(N, dtype=float)
    rise_fall = np.where(it < 20, 100.0 * it / 19, 100.0 - 3.5 * (it - 19))  # 100 -> 30
    for s in range(3):
        _with_returns(write_run(tmp_path, "stable-walker", "qprop-c", s, blow_up=None,
                                cross=None), rise_fall + s)
        _with_returns(write_run(tmp_path, "stable-walker", "qprop-fix", s, blow_up=None,
                                cross=None), np.minimum(100.0 * it / 19, 100.0) + s)
    runs = load_runs(tmp_path, "stable-walker").runs
    collapsed = st.after_peak(next(r for r in runs if r.algo == "qprop-c" and r.seed == 0))
    assert collapsed.final == pytest.approx(np.mean(rise_fall[-10:]))
    assert collapsed.best == pytest.approx(np.max(pd.Series(rise_fall).rolling(10).mean()))
    assert collapsed.retained < 0.6
    kept = st.after_peak(next(r for r in runs if r.algo == "qprop-fix" and r.seed == 0))
    assert kept.retained == pytest.approx(1.0) and kept.best == pytest.approx(100.0)
    vs = {v.algo: v for v in st.domain_variants(runs, {}, "Swimmer", "qprop-c", "trpo")}
    assert st.retains_more_p(vs["qprop-fix"], vs["qprop-c"]) <= 0.05  # all 3 above all 3
    assert st.retains_more_p(vs["qprop-c"], vs["qprop-fix"]) > 0.9
    assert math.isnan(st.retains_more_p(vs["qprop-c"], vs["qprop-c"]))
    rows = st.after_peak_rows(list(vs.values()), st.reference_side(runs, "Swimmer", "trpo"),
                              "qprop-c")
    assert [r["variant"] for r in rows] == ["qprop-c", "qprop-fix"]  # no reference runs
    assert rows[1]["kept of the best, median [smallest]"] == "100% [100%]"
    assert rows[1]["policy std at the end, median [range]"] == "0.91 [0.91, 0.91]"  # last 10


def test_summary_reads_each_stability_profile_with_its_own_roles(tmp_path: Path, capsys):
    from reproduce import stability_summary as ss

    for s in range(3):  # stable-strong's roles (profiles.toml): baseline and reference in strong
        write_run(tmp_path, "strong", "qprop-c-strong", s, blow_up=15, cross=35)
        write_run(tmp_path, "strong", "trpo-strong", s, blow_up=None, cross=20)
        write_run(tmp_path, "stable-strong", "qprop-c-strong-tclip", s,
                  blow_up=30 if s == 0 else None, cross=None)
    write_run(tmp_path, "strong", "qprop-c", 0, blow_up=5, cross=None)  # not a role: not read
    assert st.roles("stable-strong") == ("qprop-c-strong", "trpo-strong", "strong")
    assert ss.stability_profiles(tmp_path) == ["stable-strong"]
    assert ss.main(["--results", str(tmp_path)]) == 0
    md = (tmp_path / "stability_summary.md").read_text()
    assert "| stable-strong | Swimmer (90) | qprop-c-strong (authors' critic) | 3/3 |" in md
    assert "| stable-strong | Swimmer (90) | qprop-c-strong-tclip | 1/3 | 0.1 | 0/3 |" in md
    assert "| stable-strong (strong) | Swimmer (90) | trpo-strong (reference) | - | - | 3/3 |" \
        in md
    assert "| qprop-c |" not in md
    rows = {r["variant"]: r for r in ss.summary_rows(tmp_path, "stable-strong")}
    assert rows["qprop-c-strong-tclip"]["CPU-h"] == f"{3 * N * 1.5 / 3600:.2f}"  # cpu_time
    assert rows["trpo-strong (reference)"]["CPU-h"] == f"{3 * N * 2.0 / 3600:.2f}"  # wall time
    assert ss.main(["--results", str(tmp_path / "nope")]) == 2
