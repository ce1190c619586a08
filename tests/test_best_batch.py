"""reproduce.best_batch (issue 15): censoring, the best-batch choice, the held-out verdict,
the confirmation profile's seeds and selection file. Synthetic progress files, no training."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reproduce import best_batch as bb
from reproduce import best_batch_heldout as bbh
from reproduce import compare as cmp
from reproduce import compare_stats as stats
from reproduce import spec as rspec
from reproduce.results import Run

GRID_ALGOS = ["trpo-b1000", "trpo-b5000", "trpo", "qprop-c-b1000", "qprop-c", "qprop-c-b25000"]


def write_run(results: Path, profile: str, domain: str, algo: str, seed: int,
              cross: float | None, budget: int = 600, var: tuple[float, float] | None = None
              ) -> Path:
    """A finished run whose return jumps above the threshold at ``cross`` episodes (None:
    never, so censored at ``budget``)."""
    d = results / profile / "runs" / domain / algo / f"seed{seed}"
    d.mkdir(parents=True)
    episodes = np.arange(10, budget + 1, 10)
    thresh = rspec.threshold(domain)
    hit = episodes >= (cross if cross is not None else np.inf)
    df = pd.DataFrame({"iteration": range(len(episodes)), "env_steps": episodes * 1000,
                       "average_return": np.where(hit, thresh + 10, thresh - 100)})
    if var is not None:
        df["signal_var_before"], df["signal_var_after"] = var
    df.to_csv(d / "progress.csv", index=False)
    (d / "config.json").write_text(json.dumps(
        {"config": {"algo": rspec.base_algo(algo), "max_steps": budget * 1000}}))
    (d / "DONE").write_text(json.dumps({"stopped": "budget" if cross is None else "early"}))
    return d


# ---------------------------------------------------------------------- censoring

def test_censored_seeds_count_as_infinity_in_median_and_quartiles():
    vals, cens = [100.0, 200.0, 300.0, 600.0, 600.0], [False, False, False, True, True]
    assert stats.censored_median(vals, cens) == 300.0  # 2 of 5 censored: still a number
    assert bb.censored_quantile(vals, cens, 0.25) == 200.0
    assert bb.censored_quantile(vals, cens, 0.75) == math.inf  # falls on a censored seed
    assert bb.censored_quantile(vals, [False] * 5, 0.75) == 600.0
    assert bb.censored_quantile([100.0, 200.0], [False, False], 0.5) == 150.0
    assert bb.censored_quantile([100.0, 200.0], [False, True], 0.5) == math.inf
    assert math.isnan(bb.censored_quantile([], [], 0.5))
    # a run that never crossed is censored at its budget
    df = pd.DataFrame({"env_steps": [1000 * (i + 1) for i in range(5)],
                       "average_return": [-50.0] * 5})
    run = Run("Reacher", "trpo", 0, Path("."), df, "average_return", True,
              {"stopped": "budget", "max_steps": 5000})
    assert cmp.episodes_to_threshold(run) == cmp.Crossing(5.0, True)


# ---------------------------------------------------------------------- selection

def _cell(batch: int, values: list[float], censored: list[bool], family: str = "trpo"
          ) -> bb.Cell:
    side = cmp.Side(f"{family}-b{batch}", [])
    side.values, side.censored = np.array(values), np.array(censored)
    side.runs = [None] * len(values)  # type: ignore[list-item]
    return bb.Cell("Hopper", family, side.algo, batch, side, 5)


def test_choice_lowest_median_then_more_crossed_then_smaller_batch():
    a = _cell(1000, [300, 310, 320], [False] * 3)
    b = _cell(5000, [200, 210, 220], [False] * 3)
    c = _cell(25000, [250, 260, 270], [False] * 3)
    assert bb.choose([a, b, c]) is b
    # all medians censored (+inf): the cell with more seeds crossed wins
    x = _cell(1000, [100, 600, 600], [False, True, True])
    y = _cell(5000, [600, 600, 600], [True] * 3)
    z = _cell(25000, [100, 150, 600, 600], [False, False, True, True])
    assert bb.choose([y, x, z]) is z
    # equal medians and crossings: the smaller batch
    p, q = _cell(25000, [200, 210, 220], [False] * 3), _cell(5000, [190, 210, 230], [False] * 3)
    assert bb.choose([p, q]) is q
    assert bb.choose([_cell(1000, [], [])]) is None  # no runs: nothing to choose


def test_selection_on_a_partial_grid(tmp_path: Path):
    # Hopper only, seeds 0-2 of 5: trpo best at 5000, qprop-c best at 1000
    for seed in range(3):
        write_run(tmp_path, "bestbatch", "Hopper", "trpo-b1000", seed, None, 3000)
        write_run(tmp_path, "bestbatch", "Hopper", "trpo-b5000", seed, 900 + 10 * seed, 3000)
        write_run(tmp_path, "bestbatch", "Hopper", "trpo", seed, 1500, 3000)
        write_run(tmp_path, "bestbatch", "Hopper", "qprop-c-b1000", seed, 500, var=(4.0, 1.0))
        write_run(tmp_path, "bestbatch", "Hopper", "qprop-c", seed, 550, var=(4.0, 2.0))
    grid, _ = bb.selection_grid(tmp_path)
    picks = bb.chosen_cells(grid)
    assert (picks["Hopper"]["trpo"].algo, picks["Hopper"]["trpo"].batch) == ("trpo-b5000", 5000)
    assert picks["Hopper"]["qprop-c"].algo == "qprop-c-b1000"
    assert "Reacher" not in picks
    assert [c.var_ratio for c in grid["Hopper"] if c.family == "qprop-c"][:2] == [0.25, 0.5]
    with pytest.raises(rspec.SpecError, match="no domain of the bestbatch grid is complete"):
        bb.write_selection(tmp_path)
    with pytest.raises(rspec.SpecError, match="no counted runs"):  # Reacher, Swimmer empty
        bb.write_selection(tmp_path, partial=True)
    blown = tmp_path / "bestbatch/runs/Hopper/qprop-c-b1000/seed2/progress.csv"
    df = pd.read_csv(blown)
    df["advantage_std"] = np.where(df.iteration == 30, 1e6, 15.0)  # the baseline runs away
    df["critic_loss"] = np.where(df.iteration >= 40, 1e6, 0.1)  # the critic diverges at 410 ep
    df.to_csv(blown, index=False)
    md, csv, figs = bb.write_report(tmp_path)  # a partial grid is reported, not fatal
    text = md.read_text()
    critic = " s2 (from 410 ep, largest TD loss 1e+06, crossed during it) |"
    assert "| `qprop-c-b1000` | 3/3 (5) | 500 [500–500] | 2.01e+03 | 0.250 | s2 (15 -> 1e+06 " \
        "from 310 ep, 1 it) |" in text.replace(critic, "")
    assert "| s2 (from 410 ep, largest TD loss 1e+06, crossed during it) |" in text
    assert "`Hopper/trpo-b1000/seed3`" in text and "`Reacher/trpo/seed0`" in text
    assert "Not available:" in text and "best_batch select" in text
    assert {p.name for p in figs} >= {"best_batch_Hopper.png", "best_batch_Hopper.svg"}
    # no selection file yet: Hopper's picks are "leading", its choice provisional
    assert "| leading (15 grid runs missing) |" in text and "| **yes** |" not in text
    assert "| Hopper | 5,000 (`trpo-b5000`) | 1,000 (`qprop-c-b1000`) | provisional: 15 grid " \
        "runs missing |" in text
    rows = pd.read_csv(csv)
    chosen = rows[(rows.domain == "Hopper") & rows.chosen.astype(bool)]
    assert sorted(chosen.algo) == ["qprop-c-b1000", "trpo-b5000"]
    assert rows[rows.algo == "qprop-c"].baseline_runaway.isna().all()


def test_selection_goes_domain_by_domain_and_never_changes_a_choice(tmp_path: Path):
    # Reacher's grid is complete (5 seeds x 6 cells); Hopper has one run, Swimmer none
    for seed in range(5):
        for algo in GRID_ALGOS:
            cross = 300 if algo in ("trpo-b5000", "qprop-c-b1000") else 400
            write_run(tmp_path, "bestbatch", "Reacher", algo, seed, cross + seed)
    write_run(tmp_path, "bestbatch", "Hopper", "trpo", 0, 900, 3000)
    doc = json.loads(bb.write_selection(tmp_path).read_text())
    assert doc["algos"] == {"Reacher": ["trpo-b5000", "qprop-c-b1000"]}
    assert doc["pending"] == {"Hopper": 29, "Swimmer": 30} and doc["complete"] is False
    # the confirmation runs the chosen domain only, at its chosen batches, seeds 5-9
    held = rspec.resolve_runs("bestbatch-confirm", results=tmp_path)
    assert {(s.domain, s.algo) for s in held} == {("Reacher", "trpo-b5000"),
                                                  ("Reacher", "qprop-c-b1000")}
    assert sorted({s.seed for s in held}) == [5, 6, 7, 8, 9]
    bb.write_selection(tmp_path)  # the same grid: the same choice, written again
    # a rerun that would move Reacher's TRPO choice is refused: seeds 5-9 ran the old one
    for seed in range(5):
        run = tmp_path / f"bestbatch/runs/Reacher/trpo-b5000/seed{seed}"
        for f in run.iterdir():
            f.unlink()
        run.rmdir()
        write_run(tmp_path, "bestbatch", "Reacher", "trpo-b5000", seed, None)
    with pytest.raises(rspec.SpecError, match="chose otherwise before"):
        bb.write_selection(tmp_path)


def test_a_domain_ordered_sweep_finishes_the_cheapest_domains_grid_first():
    from reproduce import sweep as sw

    specs = rspec.resolve_runs("bestbatch", ["Hopper", "Reacher"], ["trpo", "qprop-c"], 2)
    order = [(s.domain, s.seed) for s in sw.order_runs(specs)]
    assert order == [("Reacher", 0)] * 2 + [("Reacher", 1)] * 2 \
        + [("Hopper", 0)] * 2 + [("Hopper", 1)] * 2
    seed_major = [(s.domain, s.seed) for s in sw.order_runs(
        rspec.resolve_runs("quick", ["Hopper", "Reacher"], ["trpo", "qprop-c"], 2))]
    assert [seed for _, seed in seed_major] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert sw.sweep_order("bestbatch") == "domain" and sw.sweep_order("quick") == "seed"


# ---------------------------------------------------------------------- held-out verdict

def _side(algo: str, values: list[float], censored: list[bool] | None = None) -> cmp.Side:
    s = cmp.Side(algo, [])
    s.values = np.array(values, dtype=float)
    s.censored = np.array(censored or [False] * len(values))
    s.runs = [None] * len(values)  # type: ignore[list-item]
    s.median = stats.median_ci(s.values, s.censored)
    return s


def test_heldout_verdict_faster_slower_indistinguishable():
    fast = _side("qprop-c", [90, 95, 100, 105, 110])
    slow = _side("trpo", [280, 290, 300, 310, 320])
    r, word, p = bbh.heldout_verdict(fast, slow, "Hopper")
    assert word == "Q-Prop faster" and r.hi < 1 and p < 0.01
    _, word, p = bbh.heldout_verdict(_side("qprop-c", [280, 290, 300, 310, 320]),
                                    _side("trpo", [90, 95, 100, 105, 110]), "Hopper")
    assert word == "TRPO faster" and p > 0.99
    same = [100, 150, 200, 250, 300]
    _, word, p = bbh.heldout_verdict(_side("qprop-c", same), _side("trpo", same[::-1]),
                                    "Hopper")
    assert word == "indistinguishable" and 0.3 < p < 0.7
    # censored TRPO seeds (never crossed) count as slower than any crossing
    _, word, p = bbh.heldout_verdict(fast, _side("trpo", [600] * 5, [True] * 5), "Hopper")
    assert word == "Q-Prop faster" and p < 0.01


def test_pooled_p_gathers_weak_evidence_from_every_domain():
    """Three domains each leaning the same way, none significant alone: the pooled p is
    smaller than each; opposite leanings cancel; one domain gives no pooled p."""
    lean = [bbh.Heldout(d, None, "indistinguishable", 0.12)  # type: ignore[arg-type]
            for d in ("Reacher", "Hopper", "Swimmer")]
    assert bbh.pooled_p(lean) < 0.05 < min(h.p for h in lean)
    mixed = [bbh.Heldout(d, None, "", p)  # type: ignore[arg-type]
             for d, p in (("Reacher", 0.1), ("Hopper", 0.9))]
    assert bbh.pooled_p(mixed) == pytest.approx(0.5)
    assert math.isnan(bbh.pooled_p(lean[:1]))


# ---------------------------------------------------------------------- the confirmation

def test_seed_offset_of_the_confirmation_profile(tmp_path: Path):
    specs = rspec.resolve_runs("bestbatch", ["Hopper"], ["trpo"])
    assert [s.seed for s in specs] == [0, 1, 2, 3, 4]
    held = rspec.resolve_runs("bestbatch-confirm", ["Hopper"], ["trpo"])
    assert [s.seed for s in held] == [5, 6, 7, 8, 9]
    assert held[0].run_dir(tmp_path) == tmp_path / "bestbatch-confirm/runs/Hopper/trpo/seed5"
    assert held[0].identity() == specs[0].identity() | {"seed": 5}  # same rules, other seed
    assert [s.seed for s in rspec.resolve_runs("bestbatch", ["Hopper"], ["trpo"], 2, first=7)
            ] == [7, 8]
    for bad in (-1, 1.5, True, "5"):
        with pytest.raises(rspec.SpecError, match="first_seed"):
            rspec.first_seed("bestbatch", bad)  # type: ignore[arg-type]


def test_budgets_come_from_the_base_algorithm():
    grid = {s.algo: s for s in rspec.resolve_runs("bestbatch", ["Hopper"], GRID_ALGOS, 1)}
    assert grid["trpo-b1000"].budget_episodes == grid["trpo"].budget_episodes
    assert grid["qprop-c-b25000"].budget_episodes == grid["qprop-c"].budget_episodes
    assert grid["trpo-b1000"].overrides["batch_size"] == 1000
    assert grid["qprop-c-b25000"].overrides["batch_size"] == 25000
    assert grid["trpo"].early_stop is not None


def test_confirmation_reads_the_selection_file(tmp_path: Path):
    with pytest.raises(rspec.SpecError, match="does not exist.*best_batch select"):
        rspec.resolve_runs("bestbatch-confirm", results=tmp_path)
    path = tmp_path / "bestbatch" / "selection.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(rspec.SpecError, match="not a selection file"):
        rspec.resolve_runs("bestbatch-confirm", results=tmp_path)
    path.write_text(json.dumps({"algos": {"Hopper": ["trpo-b5000", "qprop-c-b1000"],
                                          "Reacher": ["trpo", "qprop-c"]}}))
    specs = rspec.resolve_runs("bestbatch-confirm", results=tmp_path)
    assert sorted(s.key for s in specs if s.seed == 5) == [
        "Hopper/qprop-c-b1000/seed5", "Hopper/trpo-b5000/seed5",
        "Reacher/qprop-c/seed5", "Reacher/trpo/seed5"]
    assert len(specs) == 20
    with pytest.raises(rspec.SpecError, match="no algorithms for Swimmer"):
        rspec.resolve_runs("bestbatch-confirm", ["Swimmer"], results=tmp_path)


def test_select_then_confirm_then_report(tmp_path: Path):
    for dom in ("Reacher", "Hopper", "Swimmer"):
        for algo in GRID_ALGOS:
            for seed in range(5):
                cross = 200 if algo == "qprop-c-b1000" else 400 if algo == "trpo-b5000" else None
                write_run(tmp_path, "bestbatch", dom, algo, seed,
                          None if cross is None else cross + 10 * seed, 1000)
    assert bb.main(["select", "--results", str(tmp_path)]) == 0
    sel = json.loads((tmp_path / "bestbatch/selection.json").read_text())
    assert sel["complete"] and sel["algos"]["Hopper"] == ["trpo-b5000", "qprop-c-b1000"]
    for dom in ("Reacher", "Hopper", "Swimmer"):
        for seed in range(5, 10):
            write_run(tmp_path, "bestbatch-confirm", dom, "qprop-c-b1000", seed, 200 + seed)
            write_run(tmp_path, "bestbatch-confirm", dom, "trpo-b5000", seed,
                      400 + seed if dom != "Swimmer" else 200 + seed)
    assert bb.main(["report", "--results", str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "bestbatch/best_batch.csv")
    held = rows[rows.section == "held-out"].drop_duplicates("domain").set_index("domain")
    assert held.verdict.to_dict() == {"Reacher": "Q-Prop faster", "Hopper": "Q-Prop faster",
                                      "Swimmer": "indistinguishable"}
    text = (tmp_path / "bestbatch/best_batch.md").read_text()
    assert "## Missing runs\n\n- none" in text
    assert "leading" not in text and "provisional" not in text and "| **yes** |" in text
    assert "| chosen (selection.json: trpo-b5000, qprop-c-b1000) |" in text
    figs = tmp_path / "bestbatch/figures"
    assert all((figs / f"best_batch_verdicts.{x}").is_file() for x in ("png", "svg"))
    assert "All 3 domains at once: one-sided p = " in text
    # each held-out seed, named: its episodes (censored: "> x") and its flags
    assert "| Hopper | TR-c-Q-Prop | `qprop-c-b1000` | s5 210, s6 210, s7 210, s8 210, " \
        "s9 210 | - |" in text
    never = tmp_path / "bestbatch-confirm/runs/Swimmer/trpo-b5000/seed7"
    shutil.rmtree(never)
    write_run(tmp_path, "bestbatch-confirm", "Swimmer", "trpo-b5000", 7, None, 800)
    df = pd.read_csv(never / "progress.csv")
    df["advantage_std"] = np.where(df.iteration >= 30, 1e9, 2.0)  # runs away at 310 ep
    df.to_csv(never / "progress.csv", index=False)
    bb.write_report(tmp_path)
    text = (tmp_path / "bestbatch/best_batch.md").read_text()
    assert "| Swimmer | TRPO | `trpo-b5000` | s5 210, s6 210, s7 > 800, s8 210, s9 210 | " \
        "baseline ran away: s7 (2 -> 1e+09 from 310 ep, 50 it) |" in text


def test_the_time_limit_sensitivity_section(tmp_path: Path):
    """The batch-1000 cells with the authors' terminal time limit (profile `truncation`)
    against the grid's own: a faster terminal variant is called so, runaways are named per
    side, and the section says so when the profile has no runs."""
    for seed in range(5):
        ours = write_run(tmp_path, "bestbatch", "Swimmer", "trpo-b1000", seed, None, 600)
        df = pd.read_csv(ours / "progress.csv")
        df["advantage_std"] = np.where(df.iteration >= 20, 1e9, 2.0)  # runs away at 210 ep
        df.to_csv(ours / "progress.csv", index=False)
        write_run(tmp_path, "truncation", "Swimmer", "trpo-b1000-term", seed, 200 + 10 * seed)
    bb.write_report(tmp_path)
    text = (tmp_path / "bestbatch/best_batch.md").read_text()
    assert "## Sensitivity: the time limit at batch 1000" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| Swimmer | TRPO, batch 1000"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2].startswith("5/5: 220") and cells[3].startswith("0/5: > 600")
    assert cells[5] == "terminal faster" and cells[6] == "none"
    assert cells[7].startswith("s0 (2 -> 1e+09 from 210 ep, 40 it); s1 (")
    assert not [ln for ln in text.splitlines() if "TR-c-Q-Prop, batch 1000 |" in ln]
    shutil.rmtree(tmp_path / "truncation")
    bb.write_report(tmp_path)
    assert "No runs of profile `truncation` yet." in (
        tmp_path / "bestbatch/best_batch.md").read_text()


# ---------------------------------------------------------------------- decided early

def test_median_bounds_fill_the_missing_seeds_with_zero_and_censored():
    from reproduce.best_batch_decided import median_bounds
    assert median_bounds([100.0, 200.0, 300.0], [False] * 3, 5) == (100.0, 300.0)
    assert median_bounds([100.0, 200.0, 300.0], [False, False, True], 5) == (100.0, math.inf)
    assert median_bounds([100.0, 200.0, 300.0, 400.0, 500.0], [False] * 5, 5) == (300.0,
                                                                                   300.0)
    assert median_bounds([], [], 5) == (0.0, math.inf)
    with pytest.raises(ValueError, match="more than the 5 expected"):
        median_bounds([1.0] * 6, [False] * 6, 5)


class _Side:
    def __init__(self, values: list[float], censored: list[bool]):
        self.values = np.asarray(values, dtype=float)
        self.censored = np.asarray(censored, dtype=bool)
        self.runs = list(values)


class _Cell:
    """Enough of best_batch.Cell for decided() and choose()."""

    def __init__(self, batch: int, values: list[float], censored: list[bool], expected: int):
        self.batch, self.expected = batch, expected
        self.side = _Side(values, censored)
        self.median = stats.censored_median(values, censored) if values else math.nan
        self.crossed = int((~self.side.censored).sum())


def test_an_early_decision_is_the_choice_every_completion_of_the_grid_makes():
    """Random grids with seeds missing: whenever decided() names a cell, choose() on the
    grid completed in any way (missing seeds at 0, at known values, anywhere, or censored)
    picks that very cell; and it does decide some grids, never one still open."""
    from reproduce.best_batch_decided import decided
    rng = np.random.default_rng(0)
    n_decided = n_open = 0
    for _ in range(400):
        cells, full = [], []
        for batch in (1000, 5000, 25000):
            k = int(rng.integers(1, 6))
            vals = list(rng.choice([100.0, 200.0, 300.0, 400.0, 900.0, 3000.0], size=k))
            cens = list(rng.random(k) < 0.2)
            cells.append(_Cell(batch, vals, cens, 5))
            full.append((batch, vals, cens))
        pick = decided(cells)
        completions = []
        for _ in range(60):
            grid = []
            for batch, vals, cens in full:
                m = 5 - len(vals)
                extra = list(rng.choice([0.0, 100.0, 200.0, 300.0, 400.0, 900.0, 5000.0],
                                        size=m))
                grid.append(_Cell(batch, vals + extra, cens + list(rng.random(m) < 0.4), 5))
            completions.append(bb.choose(grid).batch)  # type: ignore[arg-type]
        if pick is not None:
            n_decided += 1
            assert set(completions) == {pick.batch}
        elif len(set(completions)) > 1:
            n_open += 1
    assert n_decided >= 10 and n_open >= 10


def test_select_chooses_a_domain_early_once_no_missing_run_can_change_it(tmp_path: Path):
    # Hopper, seeds 0-2 of 5 in every cell: the batch-1000 cells can no longer lose
    for seed in range(3):
        for algo in GRID_ALGOS:
            cross = 200 + 10 * seed if algo.endswith("-b1000") else 900 + 10 * seed
            write_run(tmp_path, "bestbatch", "Hopper", algo, seed, cross, 3000)
    doc = json.loads(bb.write_selection(tmp_path).read_text())
    assert doc["algos"] == {"Hopper": ["trpo-b1000", "qprop-c-b1000"]}
    assert doc["complete"] is False and doc["pending"] == {"Reacher": 30, "Swimmer": 30}
    early = doc["decided_early"]["Hopper"]
    assert early["missing"] == 12
    assert early["median_bounds"]["trpo-b1000"] == [200.0, 220.0]  # ([0,0,200,210,220], +inf)
    assert early["median_bounds"]["trpo"] == [900.0, 920.0]
    held = rspec.resolve_runs("bestbatch-confirm", results=tmp_path)
    assert {(s.domain, s.algo) for s in held} == {("Hopper", "trpo-b1000"),
                                                  ("Hopper", "qprop-c-b1000")}
    bb.write_report(tmp_path)
    text = (tmp_path / "bestbatch/best_batch.md").read_text()
    assert "| chosen (selection.json: trpo-b1000, qprop-c-b1000; decided with 12 grid runs " \
        "missing, which no outcome could change) |" in text
    # the grid completes as it may: the record of the early decision stays, the choice too
    for seed in (3, 4):
        for algo in GRID_ALGOS:
            write_run(tmp_path, "bestbatch", "Hopper", algo, seed, None, 3000)
    doc = json.loads(bb.write_selection(tmp_path).read_text())
    assert doc["algos"]["Hopper"] == ["trpo-b1000", "qprop-c-b1000"]
    assert doc["decided_early"]["Hopper"]["missing"] == 12
    # a grid that is still open is not chosen: one more seed could move TRPO's choice
    shutil.rmtree(tmp_path / "bestbatch")
    for seed in range(3):
        for algo in GRID_ALGOS:
            cross = 200 + 10 * seed if algo.endswith("-b1000") else 900 + 10 * seed
            write_run(tmp_path, "bestbatch", "Hopper", algo, seed,
                      None if (algo, seed) == ("trpo-b1000", 2) else cross, 3000)
    with pytest.raises(rspec.SpecError, match="no domain of the bestbatch grid is complete"):
        bb.write_selection(tmp_path)
