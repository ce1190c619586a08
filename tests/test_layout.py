"""Per-profile results trees, the table1 profile's budgets, extra rows, capped cells, and the
order in which a sweep starts its runs. No training: synthetic run directories only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from qprop_tf.rundir import DONE
from reproduce import spec as rspec
from reproduce.cost import run_hours
from reproduce.spec import RunSpec, SpecError, resolve_runs
from reproduce.table import build_table, write_table
from reproduce.table_format import display_frame


def write_run(results: Path, profile: str, domain: str, algo: str, seed: int,
              episodes: list[float], returns: list[float], budget_episodes: float,
              metric: str = "average_return") -> Path:
    d = results / profile / "runs" / domain / algo / f"seed{seed}"
    d.mkdir(parents=True)
    steps = [int(e * 1000) for e in episodes]
    pd.DataFrame({"iteration": range(len(steps)), "env_steps": steps,
                  "paper_episodes": episodes, metric: returns}).to_csv(
        d / "progress.csv", index=False)
    base = rspec.base_algo(algo)
    (d / "config.json").write_text(json.dumps(
        {"config": {"algo": base, "max_steps": int(budget_episodes * 1000)},
         "git_commit": "synthetic"}))
    (d / "spec.json").write_text(json.dumps({"profile": profile}))
    (d / DONE).write_text(json.dumps({"stopped": "budget",
                                      "max_steps": int(budget_episodes * 1000)}))
    return d


def _row(df: pd.DataFrame, domain: str, algo: str) -> pd.Series:
    rows = df[(df.domain == domain) & (df.algo == algo)]
    assert len(rows) == 1, (domain, algo)
    return rows.iloc[0]


def test_run_dir_is_per_profile(tmp_path):
    quick = resolve_runs("quick", ["Hopper"], ["trpo"], 1)[0]
    table1 = resolve_runs("table1", ["Hopper"], ["trpo"], 1)[0]
    assert quick.run_dir(tmp_path) == tmp_path / "quick/runs/Hopper/trpo/seed0"
    assert table1.run_dir(tmp_path) == tmp_path / "table1/runs/Hopper/trpo/seed0"
    assert quick.identity() == table1.identity()  # the same rule: the same run, another tree


def test_table1_budgets_cap_the_cells_the_paper_never_crossed():
    t1 = {s.key: s for s in resolve_runs("table1")}
    prof = rspec.profiles()["table1"]
    assert len(t1) == 7 * 3 * 3 and prof["extra_rows_from"] == ["strong", "ablation",
                                                            "bestbatch", "humanoid-env"]
    assert t1["Ant/ddpg/seed0"].budget_episodes == 5000  # paper N/A
    assert t1["Humanoid/ddpg/seed2"].budget_episodes == 5000  # paper N/A
    assert t1["Humanoid/trpo/seed0"].budget_episodes == 10000  # paper >30000
    assert t1["Humanoid/qprop-c/seed0"].budget_episodes == 22200  # 1.5 x 14750, crossed
    assert t1["Ant/trpo/seed0"].budget_episodes == 20800  # 1.5 x 13825
    assert t1["Hopper/trpo/seed0"].budget_episodes == 8600  # as quick
    extend = {s.key: s for s in resolve_runs("extend")}
    assert extend["Ant/ddpg/seed0"].budget_episodes == 30000  # no budget_uncrossed: the cap
    for key, spec in extend.items():  # extend's runs are table1's seed 0, identically...
        if key != "Ant/ddpg/seed0":  # ...but for the one cell table1 caps
            assert spec.identity() == t1[key].identity(), key
    for spec in resolve_runs("quick"):
        assert spec.identity() == t1[spec.key].identity(), spec.key


def test_budget_algo_gives_every_algorithm_that_algorithms_budget(monkeypatch):
    walker = {s.key: s for s in resolve_runs("stable-walker")}
    qprop = walker["Walker/qprop-c/seed0"]
    assert qprop.budget_episodes == 5600  # 1.5 x the paper's Q-Prop crossing
    assert walker["Walker/trpo-b5000/seed2"].budget_episodes == 5600  # not TRPO's 28,400
    t1 = {s.key: s for s in resolve_runs("table1", ["Walker"], ["qprop-c", "trpo"], 1)}
    assert t1["Walker/trpo/seed0"].budget_episodes == 28400
    assert qprop.overrides["max_steps"] == t1["Walker/qprop-c/seed0"].overrides["max_steps"]
    profs = rspec.profiles()
    monkeypatch.setitem(profs, "bad-like", dict(profs["stable-walker"], budget_algo="nope"))
    with pytest.raises(SpecError, match="budget_algo: unknown algorithm 'nope'"):
        resolve_runs("bad-like")


def test_bad_profile_settings_are_clear_errors(monkeypatch, tmp_path, capsys):
    import reproduce.table as table

    profs = rspec.profiles()
    monkeypatch.setitem(profs, "bad-extra", dict(profs["table1"], extra_rows_from=["nope"]))
    with pytest.raises(SpecError, match="extra_rows_from names unknown profile 'nope'"):
        rspec.extra_rows_from("bad-extra")
    with pytest.raises(SpecError, match="unknown profile 'nope'"):
        resolve_runs("bad-extra", ["Hopper"], ["trpo"], 1)
    assert table.main(["--results", str(tmp_path), "--profile", "bad-extra"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert table.main(["--results", str(tmp_path), "--profile", "nope"]) == 2
    monkeypatch.setitem(profs, "bad-cap", dict(profs["table1"], budget_uncrossed={"ddpg": -1}))
    with pytest.raises(SpecError, match="budget_uncrossed.ddpg must be a positive"):
        resolve_runs("bad-cap", ["Ant"], ["ddpg"], 1)


def test_sweep_order_is_seed_major_then_cheapest_first(tmp_path):
    from reproduce.sweep import plan

    specs = resolve_runs("table1")
    todo, done, mismatched = plan(list(reversed(specs)), tmp_path, force=False)
    assert len(todo) == len(specs) and not done and not mismatched
    seeds = [s.seed for s in todo]
    assert seeds == sorted(seeds)  # every seed-0 run before any seed-1 run
    for seed in (0, 1, 2):
        hours = [run_hours(s) for s in todo if s.seed == seed]
        assert hours == sorted(hours) and len(hours) == 21
    assert todo[0].seed == 0 and todo[20].seed == 0 and todo[21].seed == 1
    assert run_hours(todo[0]) < run_hours(todo[20])


def test_table1_reads_its_tree_plus_extra_rows_of_other_algos(tmp_path):
    r = tmp_path
    write_run(r, "table1", "Hopper", "trpo", 0, [10, 20], [100, 2100], 8600)
    write_run(r, "quick", "Hopper", "trpo", 1, [10, 20], [100, 2100], 8600)  # not table1's
    write_run(r, "strong", "Hopper", "trpo-strong", 0, [10, 20], [100, 2100], 2000)
    write_run(r, "strong", "Hopper", "trpo", 0, [5, 20], [2100, 2100], 2000)  # a column algo
    write_run(r, "ablation", "Reacher", "trpo-b5000", 0, [10, 20], [-9, -6], 4300)
    # issue 15's grid: its own runs are extra rows; the one it shares with `ablation` (a
    # link in the real tree) counts once
    write_run(r, "bestbatch", "Reacher", "trpo-b5000", 0, [10, 20], [-9, -6], 4300)
    write_run(r, "bestbatch", "Reacher", "trpo-b5000", 1, [10, 30], [-9, -6], 4300)
    write_run(r, "bestbatch", "Reacher", "trpo-b1000", 0, [5, 10], [-9, -6], 4300)
    write_run(r, "bestbatch", "Reacher", "trpo", 0, [5, 10], [-9, -6], 4300)  # a column algo
    df, coll = build_table(r, "table1")
    assert _row(df, "Hopper", "trpo").seeds_run == 1  # only table1's own
    assert _row(df, "Hopper", "trpo").episodes_median == 20
    assert _row(df, "Hopper", "trpo-strong").seeds_run == 1  # extra rows
    assert _row(df, "Reacher", "trpo-b5000").seeds_run == 2  # ablation's 0, bestbatch's 1
    assert _row(df, "Reacher", "trpo-b1000").seeds_run == 1
    assert not [x for x in coll.runs if x.profile == "bestbatch" and x.algo == "trpo"]
    assert {x.profile for x in coll.runs} == {"table1", "strong", "ablation", "bestbatch"}
    assert [x.profile for x in coll.runs if x.algo == "trpo-b5000"] == ["ablation", "bestbatch"]
    quick, _ = build_table(r, "quick")  # quick has no extra rows
    assert _row(quick, "Hopper", "trpo").seeds_run == 1
    assert "trpo-strong" not in set(quick.algo)
    write_table(r, "table1", echo=False)
    md = (r / "table1/table.md").read_text()
    assert "profile `table1` (1 runs in `table1/runs`" in md
    assert "`strong` (1 runs), `ablation` (1 runs), `bestbatch` (2 runs)" in md
    assert not (r / "table.md").exists() and not (r / "quick/table.md").exists()


def test_a_run_recorded_under_another_profile_is_checked(tmp_path):
    r = tmp_path
    same = resolve_runs("quick", ["Hopper"], ["trpo"], 1)[0]
    d = write_run(r, "table1", "Hopper", "trpo", 0, [10, 20], [100, 2100], 8600)
    (d / "spec.json").write_text(json.dumps(same.to_dict()))
    other = resolve_runs("quick", ["Hopper"], ["ddpg"], 1, {"max_steps": "5000"})[0]
    d = write_run(r, "table1", "Hopper", "ddpg", 0, [1, 5], [100, 2100], 5,
                  metric="eval_return")
    (d / "spec.json").write_text(json.dumps(other.to_dict()))
    write_table(r, "table1", echo=False)
    md = (r / "table1/table.md").read_text()
    assert "spec.json of some of them names `quick`" in md
    assert "NOT the spec `table1` asks for: Hopper/ddpg/seed0 (spec.json: profile quick)" in md
    assert RunSpec.from_dict(same.to_dict()).identity() == same.identity()


def test_a_capped_cell_says_so_and_claims_no_more_than_its_budget(tmp_path):
    r = tmp_path
    for seed in (0, 1):  # Humanoid DDPG (paper N/A), capped at 5000, never crossed
        write_run(r, "table1", "Humanoid", "ddpg", seed, [1000, 5000], [300, 400], 5000,
                  metric="eval_return")
    # Ant DDPG (paper N/A), capped at 5000, and both seeds crossed: a real result.
    for seed in (0, 1):
        write_run(r, "table1", "Ant", "ddpg", seed, [1000, 5000], [1000, 3600], 5000,
                  metric="eval_return")
    # Humanoid TRPO (paper >30000): one seed of two crossed by its cap of 10000.
    write_run(r, "table1", "Humanoid", "trpo", 0, [5000, 10000], [900, 2600], 10000)
    write_run(r, "table1", "Humanoid", "trpo", 1, [5000, 10000], [900, 1000], 10000)
    df, _ = build_table(r, "table1")
    shown = display_frame(df).set_index(["Domain", "Algorithm"])
    hd = shown.loc[("Humanoid", "DDPG")]
    assert hd["Episodes (ours)"] == "not crossed by 5,000"
    assert hd["Episodes (paper)"] == "N/A in 30,000"
    assert hd["Episodes verdict"] == "not comparable: capped at 5,000"
    assert "capped at 5,000 episodes" in _row(df, "Humanoid", "ddpg").verdict_episodes_reason
    ad = _row(df, "Ant", "ddpg")
    assert ad.budget_capped and ad.verdict_episodes == "better"
    assert shown.loc[("Ant", "DDPG")]["Episodes verdict"] == "better"
    ht = shown.loc[("Humanoid", "TRPO")]
    assert ht["Episodes (paper)"] == ">30,000"
    assert ht["Episodes verdict"] == "not comparable: capped at 10,000"
    assert "only 1/2 seeds crossed" in _row(df, "Humanoid", "trpo").verdict_episodes_reason
    # An uncapped N/A cell (no runs) reads as the paper printed it.
    assert shown.loc[("Ant", "TRPO")]["Episodes (paper)"] == "13,825"
    assert not _row(df, "Hopper", "ddpg").budget_capped
