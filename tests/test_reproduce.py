"""The reproduce/ harness: configs, published numbers, table, sweep (local and Ray), plots."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

from qprop_tf.rundir import DONE  # noqa: E402
from reproduce import spec as rspec  # noqa: E402
from reproduce.algo_names import paper_name  # noqa: E402
from reproduce.cost import run_hours  # noqa: E402
from reproduce.runner import (  # noqa: E402
    EarlyStopCallback,
    StopTraining,
    run_one,
)
from reproduce.spec import EarlyStop, RunSpec, resolve_runs  # noqa: E402
from reproduce.table import build_table, spread, write_table  # noqa: E402
from reproduce.table_format import _budget_cell  # noqa: E402

# ---------------------------------------------------------------------- synthetic runs


def write_run(results: Path, domain: str, algo: str, seed: int, episodes: list[float],
              returns: list[float], *, base: str | None = None, budget_episodes: float = 30000,
              done: bool = True, stopped: str = "budget", eval_returns: list[float] | None = None,
              real_per_episode: float = 2.0, profile: str = "quick") -> Path:
    """A run directory as the sweep leaves it (in ``profile``'s tree), with hand-chosen rows."""
    d = results / profile / "runs" / domain / algo / f"seed{seed}"
    d.mkdir(parents=True)
    steps = [int(round(e * 1000)) for e in episodes]
    df = pd.DataFrame({"iteration": range(len(steps)), "env_steps": steps,
                       "paper_episodes": [s / 1000 for s in steps],
                       "real_episodes": [e * real_per_episode for e in episodes],
                       "average_return": returns, "max_return_so_far": np.maximum.accumulate(
                           np.nan_to_num(returns, nan=-1e9))})
    if eval_returns is not None:
        df["eval_return"] = eval_returns
    df.to_csv(d / "progress.csv", index=False)
    base = base or rspec.base_algo(algo)
    budget = int(budget_episodes * 1000)
    (d / "config.json").write_text(json.dumps({
        "config": {"algo": base, "max_steps": budget, "batch_size": 5000, "eval_steps": 10000},
        "versions": {"gymnasium": "1.4.0", "mujoco": "4.0.0", "tensorflow": "2.21.0"},
        "git_commit": "synthetic"}))
    if done:
        (d / DONE).write_text(json.dumps({"status": "done", "stopped": stopped,
                                          "max_steps": budget, "env_steps": steps[-1]}))
    return d


FULL = 30000  # a run that covers the paper's 30000 episodes ends here


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    r = tmp_path / "results"
    # Hopper TR-c-Q-Prop, 3 seeds, all cross: at 10, 20, 30 episodes; maxima 2500, 3000, 2900.
    write_run(r, "Hopper", "qprop-c", 0, [5, 10, 20, 30, FULL], [100, 2100, 2500, 1800, 1900])
    write_run(r, "Hopper", "qprop-c", 1, [5, 10, 20, 30, FULL], [100, 500, 2200, 3000, 2000])
    write_run(r, "Hopper", "qprop-c", 2, [5, 10, 20, 30, FULL], [0, 100, 1000, 2001, 2900])
    # Hopper TRPO, a single seed that never crosses 2000 (max 500) in the full budget.
    write_run(r, "Hopper", "trpo", 0, [5, 10, 20, FULL], [100, 200, 500, 400])
    # Hopper DDPG: the table must read eval_return (crossing 2 and 4 episodes), not the
    # training return (which crosses at 1 and is NaN in some epochs).
    write_run(r, "Hopper", "ddpg", 0, [1, 2, 3, FULL], [2500, math.nan, 0, 0],
              eval_returns=[100, 2100, 2600, 2000])
    write_run(r, "Hopper", "ddpg", 1, [1, 2, 4, FULL], [2500, 0, 0, 0],
              eval_returns=[100, 1900, 2200, 2400])
    # Swimmer TR-c-Q-Prop stopped early at 40 episodes: max 120 > paper 103 (better even so).
    write_run(r, "Swimmer", "qprop-c", 0, [10, 20, 30, 40], [10, 95, 120, 100],
              budget_episodes=3100, stopped="early")
    # Swimmer TRPO: stopped early below the paper's max -> not comparable.
    write_run(r, "Swimmer", "trpo", 0, [25, 50, 75], [50, 91, 95], budget_episodes=4600,
              stopped="early")
    # Swimmer DDPG: no DONE (unfinished) -> left out and listed.
    write_run(r, "Swimmer", "ddpg", 0, [5, 10], [1, 2], eval_returns=[1, 2], done=False)
    # Humanoid TRPO (paper ">30000"): never crosses in the full budget -> within.
    write_run(r, "Humanoid", "trpo", 0, [25, 1000, FULL], [100, 500, 900])
    # Humanoid DDPG (paper N/A): crosses -> better.
    write_run(r, "Humanoid", "ddpg", 0, [5, 100, FULL], [0, 0, 0],
              eval_returns=[100, 2600, 2400])
    # Reacher TR-c-Q-Prop: budget ends (2000) before the paper's crossing (2060), no crossing.
    write_run(r, "Reacher", "qprop-c", 0, [500, 1000, 2000], [-20, -10, -8],
              budget_episodes=2000)
    # An algorithm without a Table 1 column.
    write_run(r, "Hopper", "vpg", 0, [5, 10], [10, 20])
    return r


def _cell(df: pd.DataFrame, domain: str, algo: str) -> pd.Series:
    rows = df[(df.domain == domain) & (df.algo == algo)]
    assert len(rows) == 1, (domain, algo)
    return rows.iloc[0]


# ---------------------------------------------------------------------- configs


def test_published_csv_has_every_cell_of_table1():
    pub = rspec.load_published()
    assert len(pub) == 7 * 3 * 2
    assert set(pub.domain) == set(rspec.domains())
    assert set(pub.algo) == set(rspec.TABLE1_ALGOS)
    assert set(pub.qualifier) <= {"", ">", "N/A"}
    for domain, cfg in rspec.domains().items():  # thresholds agree with the TOML
        assert set(pub[pub.domain == domain].threshold) == {cfg["threshold"]}
    na = pub[pub.qualifier == "N/A"]
    assert set(zip(na.domain, na.algo, strict=True)) == {("Ant", "ddpg"), ("Humanoid", "ddpg")}
    assert na.value.isna().all()
    assert rspec.published_cell("Humanoid", "qprop-c", "max_return") == (3492.0, ">")
    assert rspec.published_cell("Humanoid", "trpo", "episodes") == (30000.0, ">")
    assert rspec.published_cell("Reacher", "qprop-c", "max_return") == (-6.0, "")
    assert rspec.published_cell("Walker", "trpo", "episodes") == (18875.0, "")


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper", "fig2", "fig3", "table1",
                                     "stable", "stable-walker", "bestbatch"])
def test_every_profile_resolves_to_valid_configs(profile):
    specs = resolve_runs(profile)  # validates every run with qprop_tf's Config
    prof = rspec.profiles()[profile]
    assert len(specs) == len(prof["domains"]) * len(prof["algos"]) * prof["seeds"]
    assert len({s.key for s in specs}) == len(specs)
    for s in specs:
        assert s.metric == ("eval_return" if s.base_algo == "ddpg" else "average_return")
        assert s.overrides["progress_bar"] is False


def test_budgets_and_hyperparameters():
    quick = {s.key: s for s in resolve_runs("quick")}
    # 1.5 x the paper's crossing, rounded up to 100 episodes, at least +500.
    assert quick["Hopper/trpo/seed0"].budget_episodes == 8600  # 1.5 * 5715
    assert quick["Swimmer/ddpg/seed0"].budget_episodes == 1000  # 500 + 500
    assert quick["Hopper/trpo/seed0"].overrides["batch_size"] == 25000
    assert quick["Hopper/qprop-c/seed0"].overrides["batch_size"] == 5000
    assert quick["Hopper/qprop-c/seed0"].early_stop == EarlyStop(2000.0, "average_return", 0.1, 3)
    ablation = {s.key: s for s in resolve_runs("ablation")}
    # A variant without a Table 1 cell takes its base algorithm's crossing.
    assert ablation["Hopper/trpo-b5000/seed0"].budget_episodes == 8600
    assert ablation["Hopper/trpo-b5000/seed0"].overrides["batch_size"] == 5000
    assert ablation["Hopper/qprop-c-clipq/seed0"].overrides["critic_clip_actions"] is True
    paper = {s.key: s for s in resolve_runs("paper")}
    assert len({s.seed for s in paper.values()}) == 5
    assert all(s.max_steps == 30_000_000 and s.early_stop is None for s in paper.values())
    r01 = resolve_runs("fig3", ["Humanoid"], ["ddpg-r0.1"], 1)[0]
    assert r01.base_algo == "ddpg" and r01.overrides["reward_scale"] == 0.1
    smoke = resolve_runs("smoke", ["Hopper"], ["trpo"], 1, {"gamma": "0.95"})[0]
    assert smoke.overrides["gamma"] == 0.95 and smoke.max_steps == 1000
    with pytest.raises(rspec.SpecError, match="unknown config key"):
        resolve_runs("smoke", ["Hopper"], ["trpo"], 1, {"no_such_key": "1"})
    with pytest.raises(rspec.SpecError, match="unknown domain"):
        resolve_runs("smoke", ["Hopper-v5"], ["trpo"], 1)
    # A spec survives its JSON round trip unchanged (the sweep's skip test relies on it).
    assert RunSpec.from_dict(json.loads(json.dumps(smoke.to_dict()))) == smoke


def test_early_stop_callback_stops_past_the_margin():
    seen = []
    cb = EarlyStopCallback(EarlyStop(100.0, "average_return", 0.5, 2), seen.append)
    rows = [(1000, 50), (2000, 101), (2500, 90), (2900, 95), (3100, 80)]
    with pytest.raises(StopTraining):
        for i, (steps, ret) in enumerate(rows):
            cb(i, {"env_steps": steps, "average_return": ret})
    # crossed at 2000 (iteration 1); stops at >= 3000 steps and >= 2 iterations later.
    assert cb.crossed_steps == 2000 and cb.last_steps == 3100 and cb.stopped
    assert seen == [1000, 2000, 2500, 2900, 3100]
    never = EarlyStopCallback(None)
    never(0, {"env_steps": 10, "average_return": 1e9})
    assert not never.stopped


def test_spread_rules():
    assert spread([]).kind == ""
    one = spread([5.0])
    assert (one.median, one.lo, one.hi, one.kind) == (5.0, 5.0, 5.0, "single seed")
    two = spread([4.0, 10.0])
    assert (two.median, two.lo, two.hi, two.kind) == (7.0, 4.0, 10.0, "min-max")
    three = spread([10.0, 20.0, 30.0])
    assert three.median == 20.0 and three.kind == "bootstrap 95% CI"
    assert 10.0 <= three.lo <= 20.0 <= three.hi <= 30.0


# ---------------------------------------------------------------------- table


def test_table_from_synthetic_runs(synthetic):
    df, coll = build_table(synthetic, "quick")
    assert [str(u) for u in coll.unfinished] == [
        str(synthetic / "quick/runs/Swimmer/ddpg/seed0")]
    assert not coll.problems

    q = _cell(df, "Hopper", "qprop-c")
    assert (q.seeds_run, q.seeds_crossed) == (3, 3)
    assert q.episodes_median == 20 and q.episodes_interval == "bootstrap 95% CI"
    assert 10 <= q.episodes_lo <= q.episodes_hi <= 30
    assert q.env_steps_median == 20000 and q.real_episodes_median == 40
    assert q.max_return_median == 2900  # median of 2500, 3000, 2900
    assert (q.paper_episodes, q.paper_max_return) == (5945, 2957)
    assert q.verdict_episodes == "better"  # 20 << 5945
    assert q.verdict_max_return == "within", q.verdict_max_return_reason  # 2957 in the CI

    t = _cell(df, "Hopper", "trpo")
    assert (t.seeds_run, t.seeds_crossed) == (1, 0) and math.isinf(t.episodes_median)
    assert t.episodes_bound == 30000  # censored at its budget: "> 30,000", never "missing"
    assert t.max_return_median == 500 and t.max_return_interval == "single seed"
    assert t.verdict_episodes == "worse"  # ran all 30000 episodes, never crossed; paper 5715
    assert t.verdict_max_return == "worse"

    d = _cell(df, "Hopper", "ddpg")
    assert d.metric == "eval_return"
    assert (d.seeds_crossed, d.episodes_median, d.episodes_lo, d.episodes_hi) == (2, 3, 2, 4)
    assert d.episodes_interval == "min-max"
    assert d.max_return_median == (2600 + 2400) / 2

    s = _cell(df, "Swimmer", "qprop-c")
    assert s.episodes_median == 20 and s.stopped_early == 1 and s.budget_episodes_max == 3100
    assert s.early_ended_episodes_max == 40
    assert s.verdict_max_return == "better"  # 120 > 103 even at a shorter budget
    s2 = _cell(df, "Swimmer", "trpo")
    assert s2.episodes_median == 50 and s2.verdict_episodes == "better"
    assert s2.verdict_max_return == "not comparable"  # 95 < 110, but stopped early
    assert "stopped early" in s2.verdict_max_return_reason

    sd = _cell(df, "Swimmer", "ddpg")
    assert sd.seeds_run == 0 and sd.seeds_unfinished == 1 and sd.verdict_episodes == "missing"

    ht = _cell(df, "Humanoid", "trpo")  # paper >30000 and ours never crossed in 30000
    assert ht.paper_episodes_qualifier == ">" and ht.verdict_episodes == "within"
    hd = _cell(df, "Humanoid", "ddpg")  # paper N/A, ours crossed at 100
    assert hd.paper_episodes_qualifier == "N/A" and hd.episodes_median == 100
    assert hd.verdict_episodes == "better"
    hq = _cell(df, "Humanoid", "qprop-c")
    assert hq.seeds_run == 0 and hq.verdict_episodes == "missing"

    rq = _cell(df, "Reacher", "qprop-c")  # budget 2000 < the paper's 2060
    assert rq.verdict_episodes == "not comparable"
    assert "before the paper" in rq.verdict_episodes_reason

    for domain in rspec.domains():  # every Table 1 cell is a row, run or not
        for algo in rspec.TABLE1_ALGOS:
            _cell(df, domain, algo)
    assert not _cell(df, "Hopper", "vpg").table1_column
    assert (_cell(df, "Walker", "trpo").seeds_run == 0)


def test_table_files_and_missing_seeds(synthetic, capsys):
    df = write_table(synthetic, profile="quick")
    out = capsys.readouterr().out
    assert (synthetic / "quick/table.csv").is_file()
    assert not (synthetic / "table.csv").exists()
    md = (synthetic / "quick/table.md").read_text()
    for needle in ("v5", "1000 env steps", "noise-free evaluation", "10000 env steps",
                   "git commit synthetic", "bootstrap 95% CI", "missing", "Why each verdict",
                   "**Machines**: not recorded"):
        assert needle in md, needle
    assert "Hopper" in out and "TR-c-Q-Prop" in out
    # quick expects 3 seeds: Hopper/trpo has 1 run -> 2 missing; Walker/qprop-c 3 missing.
    assert _cell(df, "Hopper", "trpo").seeds_missing == 2
    assert _cell(df, "Walker", "qprop-c").seeds_missing == 3
    back = pd.read_csv(synthetic / "quick/table.csv")
    assert len(back) == len(df)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no_column", "empty", "text_value"])
def test_corrupt_progress_is_reported_by_name_and_skipped(synthetic, capsys, damage):
    path = synthetic / "quick/runs/Hopper/qprop-c/seed1/progress.csv"
    text = path.read_text()
    if damage == "truncated":  # the process died mid-row
        path.write_text(text[: len(text) - 7])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff\xfe binary junk\n\"unterminated,quote\n1,2\n")
    elif damage == "no_column":
        path.write_text(text.replace("average_return", "avg_ret"))
    elif damage == "empty":
        path.write_text("")
    else:
        lines = text.splitlines()
        lines[2] = lines[2].replace(lines[2].split(",")[4], "oops")
        path.write_text("\n".join(lines) + "\n")
    df = write_table(synthetic, "quick")
    err = capsys.readouterr().err
    assert str(path) in err
    q = _cell(df, "Hopper", "qprop-c")
    assert q.seeds_run == 2 and q.seeds_corrupt == 1  # the other two seeds still count
    assert str(path) in (synthetic / "quick/table.md").read_text()


def test_empty_results_give_a_table_of_missing_cells(tmp_path):
    df = write_table(tmp_path / "nothing", echo=False)
    assert len(df) == 21 and (df.verdict_episodes == "missing").all()


def test_a_profile_of_other_algorithms_lists_only_its_own_cells(tmp_path):
    # quick runs Table 1's columns: its table is Table 1's whole grid, run or not (above);
    # a pilot of other algorithms, or of a few of Table 1's beside others, lists its own
    # cells and counts no Table 1 verdicts.
    quick = write_table(tmp_path / "r", "quick", echo=False)
    assert len(quick) == 21
    assert "## Episodes verdicts, counted" in (tmp_path / "r/quick/table.md").read_text()
    pilot = write_table(tmp_path / "r", "humanoid-rscale", echo=False)
    assert sorted(pilot.algo) == ["qprop-c-r0.01", "qprop-c-r0.1"]
    assert (pilot.seeds_missing == 2).all()
    md = (tmp_path / "r/humanoid-rscale/table.md").read_text()
    assert md.startswith("# Profile `humanoid-rscale`") and "verdicts, counted" not in md
    # a study that runs one of Table 1's columns beside its own variants lists its cells only
    stable = write_table(tmp_path / "r", "stable", echo=False)
    assert sorted(zip(stable.domain, stable.algo, strict=True)) == [
        ("Swimmer", "qprop-c"), ("Swimmer", "qprop-c-tclip"), ("Swimmer", "trpo-b5000")]
    md = (tmp_path / "r/stable/table.md").read_text()
    assert md.startswith("# Profile `stable`") and "Missing" not in md.split("## Why")[0]


def test_the_table_cli_refuses_a_results_path_that_does_not_exist(tmp_path, capsys):
    from reproduce.table import main

    assert main(["--results", str(tmp_path / "typo")]) == 2
    assert "no results directory" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    assert main(["--results", str(tmp_path), "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    from reproduce.plot import main as plot_main

    assert plot_main(["--results", str(tmp_path / "typo")]) == 2
    assert "no results directory" in capsys.readouterr().err


def test_plot_with_no_finished_run_fails_unless_empty_is_allowed(tmp_path, capsys):
    """`make plot` on a profile with nothing finished says so and fails; campaign-collect
    passes --allow-empty, for a profile whose first runs are still in flight."""
    from reproduce.plot import main as plot_main

    (tmp_path / "quick/runs").mkdir(parents=True)
    assert plot_main(["--results", str(tmp_path), "--profile", "quick"]) == 1
    assert "no finished runs" in capsys.readouterr().err
    assert plot_main(["--results", str(tmp_path), "--profile", "quick", "--allow-empty"]) == 0
    assert "no finished runs" in capsys.readouterr().err


def test_plots_from_synthetic_runs(synthetic):
    from reproduce.plot import make_plots

    for algo in ("qprop", "qprop-c", "trpo"):  # Figure 2a's group on HalfCheetah
        for seed in (0, 1):
            write_run(synthetic, "HalfCheetah", algo, seed, [5, 10, 20],
                      [100 * seed, 2000, 4800])
    written = make_plots(synthetic, "quick")
    assert {p.parent for p in written} == {synthetic / "quick/figures"}
    names = {p.name for p in written}
    assert {"curves_all.png", "curves_all.svg", "curves_Hopper.png", "curves_Humanoid.svg",
            "fig2a.png", "fig2a.svg", "table1.png", "table1.svg"} <= names
    assert "fig3a.png" not in names  # only one of its algorithms has runs
    assert all(p.stat().st_size > 1000 for p in written)


def test_unfinished_campaign_runs_are_drawn_but_never_counted(synthetic):
    from reproduce.plot import inflight_runs, make_plots
    from reproduce.results import load_table_runs

    def inflight(domain: str, algo: str, seed: int) -> None:
        d = write_run(synthetic, domain, algo, seed, [5, 10], [-100, 50], done=False,
                      profile="scratch")
        dest = synthetic / "quick/inflight" / domain / algo / f"seed{seed}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        d.rename(dest)

    inflight("Ant", "trpo", 0)  # a domain with no finished run yet
    inflight("Hopper", "qprop-c", 2)  # finished since: the finished run wins
    finished = load_table_runs(synthetic, "quick")
    going = inflight_runs(synthetic, "quick", finished)
    assert [(r.domain, r.algo, r.seed, r.finished) for r in going] == [("Ant", "trpo", 0, False)]
    assert not any(r.domain == "Ant" for r in finished.runs)  # the table never reads them
    names = {p.name for p in make_plots(synthetic, "quick")}
    assert {"curves_Ant.png", "curves_Ant.svg", "curves_Hopper.png"} <= names
    assert "diagnostics_Ant.png" not in names


# ---------------------------------------------------------------------- runner and sweep


def test_failed_run_is_reported_with_its_log(tmp_path):
    good = resolve_runs("smoke", ["Hopper"], ["trpo"], 1)[0].to_dict()
    bad = dict(good, base_algo="no-such-algo")  # fails inside the run, before training
    res = run_one(bad, str(tmp_path))
    run_dir = tmp_path / "smoke/runs/Hopper/trpo/seed0"
    assert res["status"] == "failed" and "no-such-algo" in res["error"]
    assert res["log"] == str(run_dir / "log.txt")
    assert "Traceback" in (run_dir / "log.txt").read_text()
    assert not (run_dir / DONE).exists()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """2 domains x 2 algorithms x 2 seeds of the smoke profile on the local backend, into a
    results directory that already holds another profile's finished runs and table."""
    from reproduce.sweep import main

    results = tmp_path_factory.mktemp("sweep") / "results"
    # A finished table1 run of a cell the smoke sweep also asks for, and its table.
    write_run(results, "Hopper", "qprop-c", 0, [5, 10], [100, 2500], profile="table1")
    (results / "table1/table.md").write_text("the committed table\n")
    before = _tree(results / "table1")
    t0 = time.perf_counter()
    code = main(["--profile", "smoke", "--domains", "Hopper,Swimmer", "--algos", "qprop-c,trpo",
                 "--seeds", "2", "--workers", "2", "--backend", "local", "--results",
                 str(results), "--no-progress"])
    return results, code, time.perf_counter() - t0, before


def test_smoke_sweep_then_table_and_figures(smoke_sweep, capsys):
    from reproduce.plot import make_plots

    results, code, seconds, before = smoke_sweep
    assert code == 0
    runs = sorted(results.glob("smoke/runs/*/*/seed*"))
    assert len(runs) == 8
    for run in runs:  # trained here, not skipped for the table1 run of Hopper/qprop-c/seed0
        assert {"DONE", "progress.csv", "config.json", "spec.json", "log.txt"} <= {
            p.name for p in run.iterdir()}
        done = json.loads((run / DONE).read_text())
        assert done["status"] == "done" and done["env_steps"] >= 1000
        assert "[reproduce] done" in (run / "log.txt").read_text()
        assert json.loads((run / "spec.json").read_text())["profile"] == "smoke"
    history = [json.loads(line) for line in
               (results / "smoke/sweeps.jsonl").read_text().splitlines()]
    assert history[0]["trained"] == 8 and history[0]["skipped"] == 0
    df = write_table(results, profile="smoke", echo=False)
    for domain in ("Hopper", "Swimmer"):
        for algo in ("qprop-c", "trpo"):
            assert _cell(df, domain, algo).seeds_run == 2  # not 3: table1's run is not read
        assert _cell(df, domain, "ddpg").seeds_missing == 2  # in the profile, not run
    compact = (results / "smoke/table_compact.md").read_text()
    assert "TR-c-Q-Prop" in compact and "DDPG" not in compact  # only the cells that ran
    assert "profile `smoke`" in (results / "smoke/table.md").read_text()
    names = {p.name for p in make_plots(results, "smoke")}
    assert {"curves_all.png", "curves_Hopper.png", "diagnostics_Hopper.png",
            "diagnostics_Swimmer.svg"} <= names
    assert sorted(p.name for p in results.iterdir()) == ["smoke", "table1"]
    assert _tree(results / "table1") == before  # the other profile's tree, byte for byte
    print(f"smoke sweep of 8 runs on 2 workers: {seconds:.1f} s")


def test_restarting_a_finished_sweep_trains_nothing(smoke_sweep, capsys):
    from reproduce.sweep import main

    results = smoke_sweep[0]
    pattern = "smoke/runs/*/*/seed*/progress.csv"
    before = {p: p.stat().st_mtime_ns for p in results.glob(pattern)}
    t0 = time.perf_counter()
    code = main(["--profile", "smoke", "--domains", "Hopper,Swimmer", "--algos", "qprop-c,trpo",
                 "--seeds", "2", "--results", str(results), "--no-progress"])
    assert code == 0 and time.perf_counter() - t0 < 10
    assert "8 already finished, 0 to run" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in results.glob(pattern)}


def test_unfinished_run_resumes_and_a_different_spec_is_not_silently_reused(tmp_path, capsys):
    from reproduce.sweep import plan, sweep

    specs = resolve_runs("smoke", ["Hopper"], ["trpo"], 1)
    run_dir = specs[0].run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    (run_dir / "progress.csv").write_text("iteration,env_steps\n0,500\n")
    (run_dir / "log.txt").write_text("old attempt\n")
    todo, done, mismatched = plan(specs, tmp_path, force=False)
    assert todo == specs and not done and not mismatched
    summary = sweep(specs, tmp_path, 1, "local", show_progress=False)
    assert summary["ran"] == 1 and not summary["failed"]
    log = (run_dir / "log.txt").read_text()
    assert log.startswith("old attempt\n")  # the log is appended to
    # No checkpoint to resume from: the run said so and started over.
    assert "but no valid checkpoint; starting over" in log
    assert "unfinished; resuming from its last checkpoint" in capsys.readouterr().out
    # The same run asked for with another budget: finished, so skipped, but said so.
    other = resolve_runs("smoke", ["Hopper"], ["trpo"], 1, {"max_steps": "2000"})
    todo, done, mismatched = plan(other, tmp_path, force=False)
    assert not todo and not done and "max_steps: 1000 -> 2000" in mismatched[0][1]




def test_the_sweep_prints_its_plan_with_the_dry_run_figures(tmp_path, capsys, monkeypatch):
    import reproduce.sweep as sw
    from reproduce.runner import SPEC

    args = ["--profile", "smoke", "--domains", "Hopper", "--algos", "trpo,qprop-c", "--seeds",
            "2", "--workers", "3", "--results", str(tmp_path), "--no-progress"]
    specs = resolve_runs("smoke", ["Hopper"], ["trpo", "qprop-c"], 2)
    trained: list[str] = []

    def fake_local(todo, results, workers, progress, stop):  # no training in this test
        trained.extend(s.key for s in todo)
        return [{"key": s.key, "status": "done", "stopped": "budget", "env_steps": 0,
                 "seconds": 0.0, "error": None, "log": ""} for s in todo]

    monkeypatch.setattr(sw, "run_local", fake_local)

    def finish(spec):
        run_dir = spec.run_dir(tmp_path)
        run_dir.mkdir(parents=True)
        (run_dir / SPEC).write_text(json.dumps(spec.to_dict()))
        (run_dir / DONE).write_text("{}")

    finish(specs[0])
    assert sw.main(args + ["--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert sw.main(args) == 0
    out = capsys.readouterr().out
    plan_lines = [ln for ln in out.splitlines() if ln.startswith("to train:")]
    assert len(plan_lines) == 1 and plan_lines[0] in dry.splitlines()  # the same figures
    assert "4 runs: 1 already finished, 3 to run" in out
    assert out.index("to train:") < out.index("sweep finished")
    hours = sum(run_hours(s) for s in specs[1:])
    assert f"to train: 3 runs, at most {hours:.2f} CPU-hours" in plan_lines[0]
    assert "on 3 workers" in plan_lines[0]
    assert trained == [s.key for s in sorted(specs[1:], key=sw.run_order)]  # the plan's order
    # The dry run's total covers every run, finished or not, with the same cost model.
    assert f"4 runs, at most {sum(map(run_hours, specs)):.2f} CPU-hours" in dry
    # Everything finished: one line, and straight on (no run started).
    for spec in specs[1:]:
        finish(spec)
    trained.clear()
    assert sw.main(args) == 0
    out = capsys.readouterr().out
    assert "4 runs: 4 already finished, 0 to run: nothing to train" in out
    assert "to train:" not in out and not trained


def test_the_plan_counts_only_what_resumed_runs_have_left(tmp_path):
    from reproduce.cost import rate_for
    from reproduce.sweep import cost_line

    specs = resolve_runs("table1", ["Humanoid"], ["qprop-c", "trpo"], 1)
    held = specs[0].max_steps // 2
    write_run(tmp_path, specs[0].domain, specs[0].algo, 0, [held / 1000], [1.0],
              profile="table1", done=False)
    full = sum(run_hours(s) for s in specs)
    left = full - held / rate_for(specs[0]) / 3600
    assert f"2 runs, at most {full:.2f} CPU-hours" in cost_line(specs, 2)
    assert f"2 runs (1 resumed), at most {left:.2f} CPU-hours" in cost_line(specs, 2, tmp_path)


def test_a_sweep_never_touches_the_runs_it_excludes(tmp_path, capsys, monkeypatch):
    """`--exclude` (a drain's lanes at the target leave the drained runs to the old pin)."""
    import reproduce.sweep as sw

    trained: list[str] = []

    def fake_local(todo, results, workers, progress, stop):
        trained.extend(s.key for s in todo)
        return [{"key": s.key, "status": "done", "stopped": "budget", "env_steps": 0,
                 "seconds": 0.0, "error": None, "log": ""} for s in todo]

    monkeypatch.setattr(sw, "run_local", fake_local)
    args = ["--profile", "smoke", "--domains", "Hopper", "--algos", "trpo,qprop-c",
            "--results", str(tmp_path), "--no-progress", "--workers", "1"]
    keys = [s.key for s in resolve_runs("smoke", ["Hopper"], ["trpo", "qprop-c"])]
    assert sw.main([*args, "--exclude", f"{keys[0]}, {keys[2]}"]) == 0
    assert "2 run(s) excluded (--exclude)" in capsys.readouterr().out
    assert sorted(trained) == sorted(k for k in keys if k not in (keys[0], keys[2]))
    trained.clear()
    assert sw.main([*args, "--exclude", "Hopper/trpo/seed9,Ant/trpo/seed0"]) == 2
    err = capsys.readouterr().err
    assert "--exclude names runs this sweep does not have: Ant/trpo/seed0, Hopper/trpo/seed9" \
        in err and not trained


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _ray_available(),
                    reason="ray is not installed (it is in requirements.txt: make install)")
def test_ray_backend_smoke(tmp_path, monkeypatch):
    from reproduce.sweep import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray instance
    monkeypatch.setenv("REPRODUCE_RAY_SHIP", "1")  # exercise the no-shared-filesystem path
    results = tmp_path / "results"
    code = main(["--profile", "smoke", "--domains", "Hopper", "--algos", "trpo", "--seeds", "2",
                 "--workers", "2", "--backend", "ray", "--results", str(results),
                 "--no-progress"])
    assert code == 0
    for seed in (0, 1):
        run = results / f"smoke/runs/Hopper/trpo/seed{seed}"
        assert (run / DONE).is_file() and (run / "progress.csv").is_file()
        log = (run / "log.txt").read_text()
        assert "[reproduce] done" in log
        # Ray's default worker niceness (15) starved runs on a loaded machine.
        assert f" nice {os.nice(0)}: " in log, log.splitlines()[0]
    assert not list(results.glob(".sweep-token-*"))
    assert os.environ.get("REPRODUCE_RAY_SHIP") == "1"


def test_stable_profile_has_one_critic_switch_per_variant():
    """Issue 14's ablation: each variant differs from qprop-c by its one critic switch, and
    every one of them has a display name."""
    runs = {s.algo: s.overrides for s in resolve_runs("stable") if s.seed == 0}
    base = runs.pop("qprop-c")
    assert runs.pop("trpo-b5000")["batch_size"] == base["batch_size"]  # the reference
    switches = {"qprop-c-tclip": {"critic_target_clip": True},
                "qprop-c-huber": {"critic_loss": "huber", "critic_huber_delta": 1.0},
                "qprop-c-gclip": {"critic_grad_clip": 10.0},
                "qprop-c-lagged": {"critic_target_policy": "lagged"},
                "qprop-c-qlr1e-4": {"qf_lr": 1e-4}}
    assert set(runs) == {"qprop-c-tclip"}
    runs |= {s.algo: s.overrides for s in resolve_runs("stable", algo_list=list(switches))
             if s.seed == 0}  # the other presets still differ by their one switch
    for algo, overrides in runs.items():
        diff = {k: v for k, v in overrides.items() if base.get(k) != v}
        assert diff == switches[algo], algo
        assert paper_name(algo) != algo
    # on the strong base, the same switches against the strong profile's qprop-c-strong
    strong = {s.algo: s.identity() for s in resolve_runs("stable-strong") if s.seed == 0}
    base_id = resolve_runs("strong", ["Swimmer"], ["qprop-c-strong"], 1)[0].identity()
    for algo, switch in (("qprop-c-strong-" + a.removeprefix("qprop-c-"), sw)
                         for a, sw in switches.items()):
        ident = strong.pop(algo)
        assert {k: v for k, v in ident.items() if k not in ("algo", "overrides")} == \
            {k: v for k, v in base_id.items() if k not in ("algo", "overrides")}
        ov, bov = ident["overrides"], base_id["overrides"]
        assert {k: v for k, v in ov.items() if bov.get(k) != v} == switch, algo
        assert paper_name(algo) != algo
    assert not strong


def test_a_crossing_during_a_critic_divergence_is_marked_and_kept(tmp_path):
    """Issue 14: the row says which seed crossed while its critic diverged (100x its
    healthy median), and the crossing still counts in the numbers."""
    from reproduce.table_format import display_frame

    r = tmp_path / "results"
    eps = [5, 10, 15, 20, 25, 30, 35, 40]
    for seed, blow_up in ((0, False), (1, True)):
        d = write_run(r, "Swimmer", "qprop-c", seed, eps, [10, 20, 30, 40, 50, 60, 95, 99])
        df = pd.read_csv(d / "progress.csv")
        df["batch_steps"] = 5000
        df["critic_loss"] = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 50.0 if blow_up else 0.2, 0.1]
        df.to_csv(d / "progress.csv", index=False)
    df, _ = build_table(r, "quick")
    row = df[(df.domain == "Swimmer") & (df.algo == "qprop-c")].iloc[0]
    assert row.seeds_crossed == 2 and row.seeds_crossed_diverged == "1"
    assert row.episodes_median == 35  # kept in the numbers
    shown = display_frame(df)
    cells = shown[(df.domain == "Swimmer") & (df.algo == "qprop-c")].iloc[0].tolist()
    assert any("crossed during a critic divergence: seed 1" in str(c) for c in cells), cells


def test_a_preset_extends_another_and_bad_chains_are_refused(monkeypatch):
    table = {"algos": {"a": {"algo": "trpo", "max_kl": 0.01, "batch_size": 5000},
                       "b": {"extends": "a", "batch_size": 1000},
                       "c": {"extends": "b", "cg_iters": 5}}}
    monkeypatch.setattr(rspec, "hyperparams", lambda: table)
    got = rspec.algos.__wrapped__()
    assert got["c"] == {"algo": "trpo", "max_kl": 0.01, "batch_size": 1000, "cg_iters": 5}
    assert got["b"] == {"algo": "trpo", "max_kl": 0.01, "batch_size": 1000}
    table["algos"]["a"]["extends"] = "c"
    with pytest.raises(rspec.SpecError, match="circle: a -> c -> b -> a"):
        rspec.algos.__wrapped__()
    table["algos"]["a"]["extends"] = "nope"
    with pytest.raises(rspec.SpecError, match="'a' extends unknown preset 'nope'"):
        rspec.algos.__wrapped__()


def test_the_tables_header_names_the_machines_the_runs_ran_on():
    from reproduce.table_format import machines_line

    a, b = {"cpu": "EPYC 7B13"}, {"cpu": "Xeon 8375C"}
    line = machines_line([{"machines": [a]}, {"machines": [a, b]}, {"config": {}}])
    assert "EPYC 7B13, Xeon 8375C" in line and "not recorded by 1 older run" in line
    assert "not recorded" in machines_line([{"config": {}}])


def test_a_run_stopped_on_a_non_finite_value_is_a_result_not_a_gap(tmp_path):
    """Training that stopped on a NonFiniteError (no DONE) counts as a run: not crossed after
    it, named in the row; an interrupted run stays unfinished and uncounted."""
    from reproduce.table_format import display_frame

    r = tmp_path / "results"
    eps = [5, 10, 15, 20]
    write_run(r, "Swimmer", "trpo", 0, eps, [10, 20, 95, 99])
    dead = write_run(r, "Swimmer", "trpo", 1, eps[:3], [10, 20, 30], done=False)
    (dead / "log.txt").write_text(
        "[reproduce] Swimmer/trpo/seed1 on vm pid 7 nice 0: x\nTraceback (most recent call "
        "last):\n  File \"run.py\"\nqprop_tf.errors.NonFiniteError: non-finite value in "
        "iteration 3 update: loss_before\n")
    paused = write_run(r, "Swimmer", "trpo", 2, eps[:2], [10, 20], done=False)
    (paused / "log.txt").write_text("[reproduce] Swimmer/trpo/seed2 on vm pid 8 nice 0: x\n")
    df, coll = build_table(r, "quick")
    row = df[(df.domain == "Swimmer") & (df.algo == "trpo")].iloc[0]
    assert (row.seeds_run, row.seeds_crossed, row.seeds_unfinished) == (2, 1, 1)
    assert row.seeds_stopped_nonfinite == "1"
    assert [u.name for u in coll.unfinished] == ["seed2"]
    shown = display_frame(df)
    cells = shown[(df.domain == "Swimmer") & (df.algo == "trpo")].iloc[0].tolist()
    assert any("training stopped on a non-finite value: seed 1" in str(c) for c in cells), cells


def test_the_sweep_never_resumes_a_run_that_stopped_on_a_non_finite_value(tmp_path):
    """It would only fail again from its checkpoint: it is a result, planned as finished;
    a run that failed otherwise, or was interrupted, is resumed; --force reruns all."""
    from reproduce.sweep import plan

    specs = rspec.resolve_runs("smoke")[:3]
    for spec, line in zip(specs, ["qprop_tf.errors.NonFiniteError: non-finite value in x",
                                  "ValueError: something else",
                                  "qprop_tf.errors.RunInterrupted: signal 15"], strict=True):
        d = spec.run_dir(tmp_path)
        d.mkdir(parents=True)
        (d / "log.txt").write_text(f"[reproduce] {spec.key} on vm pid 1 nice 0: x\n"
                                   f"Traceback (most recent call last):\n  File \"a.py\"\n{line}\n")
    todo, done, _ = plan(specs, tmp_path, force=False)
    assert [s.key for s in done] == [specs[0].key]
    assert sorted(s.key for s in todo) == sorted(s.key for s in specs[1:])
    todo, done, _ = plan(specs, tmp_path, force=True)
    assert len(todo) == 3 and not done


def test_the_sweep_bar_counts_cost_and_resumed_work_as_held_not_as_speed(tmp_path):
    """The sweep's bar is in the cost model's CPU-hours, so a dear run's step counts for more;
    it starts at the work its runs already hold, and its ETA counts only what this sweep
    trains (tqdm's `initial`)."""
    from reproduce.cost import rate_for, startup_hours
    from reproduce.outcomes import Progress

    resumed, fresh = resolve_runs("smoke", ["Hopper", "Swimmer"], ["qprop-c"], 1)
    held = resumed.max_steps // 2
    write_run(tmp_path, resumed.domain, resumed.algo, resumed.seed, [held / 1000],
              [1.0], profile=resumed.profile, done=False)
    progress = Progress([resumed, fresh], True, tmp_path)
    try:
        h = {s.key: 1 / rate_for(s) / 3600 for s in (resumed, fresh)}
        up = startup_hours()  # each run's start-up, counted once it has begun
        assert progress.held == held and progress.bar is not None
        total = resumed.max_steps * h[resumed.key] + fresh.max_steps * h[fresh.key] + 2 * up
        assert total * 60 < 1 and progress.scale == 3600  # a smoke sweep: CPU-seconds
        assert progress.bar.initial == pytest.approx((held * h[resumed.key] + up) * 3600)
        assert progress.bar.total == pytest.approx(total * 3600)
        progress.set_steps(resumed.key, held + 100)
        progress.set_steps(fresh.key, 300)
        progress.refresh()
        trained = (100 * h[resumed.key] + 300 * h[fresh.key] + up) * 3600
        assert progress.bar.n - progress.bar.initial == pytest.approx(trained)
        fmt = {**progress.bar.format_dict, "elapsed": 10.0, "ncols": 200}
        assert fmt["rate"] is None  # tqdm's rate is then (n - initial) / elapsed
        left = progress.bar.total - progress.bar.n
        eta = left / (trained / 10.0)
        line = progress.bar.format_meter(**fmt)
        assert f"<{progress.bar.format_interval(eta)}" in line, line
        assert "CPU-s (est.)" in line and f"steps={held + 400:,}/" in line
        big = Progress(resolve_runs("table1", ["Humanoid"], ["qprop-c"], 1), False)
        assert big.scale == 1.0  # hours when there are hours to show
    finally:
        progress.close()


def test_the_budget_says_where_the_runs_that_stopped_early_ended(tmp_path):
    """A cell with one run stopped early (at 400) and one that ran its budget (3,100): "stopped
    early by" is the early run's end, not the full-budget run's."""
    r = tmp_path / "results"
    write_run(r, "Swimmer", "qprop-c", 0, [100, 200, 300, 400], [10, 95, 120, 100],
              budget_episodes=3100, stopped="early")
    write_run(r, "Swimmer", "qprop-c", 1, [10, 1000, 3100], [10, 50, 60], budget_episodes=3100)
    df, _ = build_table(r, "quick")
    cell = _cell(df, "Swimmer", "qprop-c")
    assert (cell.stopped_early, cell.early_ended_episodes_max) == (1, 400)
    assert _budget_cell(cell) == "3,100, 1 stopped early by 400"


def test_seeds_that_never_crossed_are_censored_in_the_episodes_median(tmp_path):
    """Runs that did not cross count as censored (+inf, at their budget), not as missing:
    Swimmer TRPO crossed on 1 seed of 3 at 4,550 and the other two ran out at 4,600, past the
    paper's 3,025: the median is "> 4,600" and the cell is *worse*, where the median over the
    crossed seed alone (4,550, "not comparable") hid the two. A split whose spread holds the
    paper's number stays *not comparable*; enough seeds make a split cell decidable."""
    from reproduce.table_format import display_frame

    r = tmp_path / "results"
    write_run(r, "Swimmer", "trpo", 0, [1000, 4550, 5000], [10, 95, 96], budget_episodes=4600,
              stopped="early")
    for seed in (1, 2):  # the last batch runs past the budget: censored at 4,600 all the same
        write_run(r, "Swimmer", "trpo", seed, [1000, 4620], [10, 60], budget_episodes=4600)
    write_run(r, "Walker", "qprop-c", 0, [1000, 2156, 2400], [10, 3100, 500],
              budget_episodes=5600, stopped="early")
    write_run(r, "Walker", "qprop-c", 1, [1000, 5600], [10, 1120], budget_episodes=5600)
    for seed in range(9):  # Hopper TRPO: 9 seeds cross by 1,800, one never does
        write_run(r, "Hopper", "trpo", seed, [1000 + 100 * seed, 2000], [2100, 2200],
                  budget_episodes=8600, stopped="early")
    write_run(r, "Hopper", "trpo", 9, [1000, 8600], [10, 1500], budget_episodes=8600)
    df, _ = build_table(r, "quick")
    shown = display_frame(df).set_index(["Domain", "Algorithm"])["Episodes (ours)"]

    sw = _cell(df, "Swimmer", "trpo")
    assert math.isinf(sw.episodes_median) and sw.episodes_bound == 4600
    assert (sw.episodes_lo, sw.episodes_hi) == (4550, math.inf)
    assert sw.verdict_episodes == "worse", sw.verdict_episodes_reason
    assert "2 of 3 seeds never crossed" in sw.verdict_episodes_reason
    assert shown["Swimmer", "TRPO"] == "> 4,600 [4,550–∞]"

    wq = _cell(df, "Walker", "qprop-c")
    assert wq.verdict_episodes == "not comparable" and wq.episodes_bound == (2156 + 5600) / 2
    assert shown["Walker", "TR-c-Q-Prop"] == "> 3,878 [2,156–∞] (range)"

    ht = _cell(df, "Hopper", "trpo")
    assert ht.episodes_median == 1450 and math.isfinite(ht.episodes_hi) and ht.episodes_hi < 5715
    assert ht.verdict_episodes == "better", ht.verdict_episodes_reason


def test_the_table_figure_draws_each_seed_where_the_table_counts_it(synthetic, tmp_path):
    """Table 1 at a glance: a seed that crossed sits at its crossing, one that never did at
    its censoring point (the table's), flagged; a tree without Table 1 runs draws nothing."""
    from reproduce.table_plot import plot_table1, seed_crossings

    df, coll = build_table(synthetic, "quick")
    values, censored = seed_crossings(coll, "Hopper", "qprop-c", 2000)
    assert sorted(values) == [10, 20, 30] and not censored.any()
    values, censored = seed_crossings(coll, "Hopper", "trpo", 2000)  # never crossed
    assert list(values) == [30000] and list(censored) == [True]
    values, censored = seed_crossings(coll, "Swimmer", "trpo", 90)  # crossed at 50
    assert list(values) == [50] and list(censored) == [False]
    from reproduce.table_plot import panel_domains

    assert panel_domains(df) == ["Hopper", "Humanoid", "Reacher", "Swimmer"]  # ran there
    written = plot_table1(df, coll, tmp_path / "fig")
    assert [p.name for p in written] == ["table1.png", "table1.svg"]
    assert written[0].stat().st_size > 10000

    empty = tmp_path / "empty"
    write_run(empty, "Hopper", "vpg", 0, [5, 10], [10, 20])  # no Table 1 column
    df, coll = build_table(empty, "quick")
    assert plot_table1(df, coll, tmp_path / "none") == []


def test_the_table_figure_marks_whether_each_crossing_held(synthetic):
    """Over each crossing: a line up to where it held (if over 15% later), a white cross if it
    never held, a white dot if undecided, nothing if it held at once or never crossed."""
    from reproduce.plot_style import plt
    from reproduce.table_plot import draw_holds, seed_holds

    fig, ax = plt.subplots()
    draw_holds(ax, 0.0, np.array([10.0, 20.0, 30.0, 40.0, 50.0]),
               np.array([10.0, 60.0, np.nan, np.nan, np.nan]),
               ["held", "held", "no", "undecided", "-"])
    from matplotlib.collections import LineCollection

    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    segs = [seg for c in lines for seg in c.get_segments()]
    assert [(a[1], b[1]) for a, b in segs] == [(20.0, 60.0)]  # only the one held later
    marks = {tuple(c.get_offsets()[0]) for c in ax.collections
             if not isinstance(c, LineCollection)}
    ys = sorted(y for _, y in marks)
    assert ys == [30.0, 40.0, 60.0]  # the tick at 60, the cross at 30, the dot at 40
    plt.close(fig)
    # Hopper TR-c-Q-Prop (rows at 5, 10, 20, 30 episodes and the full budget, weight 1 each):
    # seed 0 held from 30 (2100, 2500, 1800 in the 25k steps to it); seed 1 crossed at 20 but
    # 500, 2200, 3000 average 1900, and then 2000 is not above 2000: never held; seed 2
    # crossed at 30 and held only at the last row (2900).
    held, status = seed_holds(build_table(synthetic, "quick")[1], "Hopper", "qprop-c")
    assert status == ["held", "no", "held"] and (held[0], held[2]) == (30, FULL)


def test_the_table_and_the_compare_report_agree_on_every_censored_median(synthetic):
    """Two modules print a cell's median episodes: the table and ``reproduce.compare``. They
    use one rule (censored at the budget or the end, +inf in the median), so they agree."""
    from reproduce.compare import episodes_to_threshold
    from reproduce.compare_stats import median_ci

    write_run(synthetic, "Walker", "trpo", 0, [1000, 2156, 2400], [10, 3100, 500],
              budget_episodes=5600, stopped="early")
    write_run(synthetic, "Walker", "trpo", 1, [1000, 5650], [10, 1120], budget_episodes=5600)
    df, coll = build_table(synthetic, "quick")
    checked = 0
    for _, r in df[df.seeds_run > 0].iterrows():
        if r.domain not in rspec.domains():
            continue
        cs = [episodes_to_threshold(x) for x in coll.select(r.domain, r.algo)]
        m = median_ci([c.episodes for c in cs], [c.censored for c in cs])
        assert (m.median, m.bound) == (r.episodes_median, r.episodes_bound), (r.domain, r.algo)
        checked += 1
    assert checked >= 8


def test_the_verdicts_are_counted_per_algorithm_over_table1s_cells(synthetic):
    from reproduce.table_format import tally

    df, coll = build_table(synthetic, "quick")
    t = tally(df)  # Hopper vpg (no Table 1 column) is not counted
    assert t.loc["TR-c-Q-Prop"].to_dict() == {"better": 2, "within": 0, "worse": 0,
                                              "not comparable": 1, "missing": 4}
    assert t.loc["TRPO"].to_dict() == {"better": 1, "within": 1, "worse": 1,
                                       "not comparable": 0, "missing": 4}
    assert t.loc["DDPG"].to_dict() == {"better": 2, "within": 0, "worse": 0,
                                       "not comparable": 0, "missing": 5}
    assert t.loc["all"].sum() == 21
    written = write_table(synthetic, "quick", echo=False)
    text = (synthetic / "quick" / "table.md").read_text()
    assert "| all | 5 | 1 | 1 | 1 | 13 |" in text and len(written) == len(df)
