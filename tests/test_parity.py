"""The parity harness (reproduce/parity*.py): chain, commands, milestones, report. No training."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from reproduce import parity, parity_chain
from reproduce.parity_chain import (
    SB3,
    ParityError,
    cumulative_sets,
    load_config,
    plan_runs,
    run_dir,
    select,
)
from reproduce.parity_curves import load_curve, milestone_cell, return_near, steps_to
from reproduce.parity_report import write_report

CFG = load_config()

# A small config of the same shape as reproduce/configs/parity.toml.
SMALL = {
    "steps": 20000, "seeds": 3, "milestones": [1000, 2000], "at_steps": [10000, 20000],
    "base": {"algo": "trpo", "set": {"batch_size": 5000}},
    "chain": [{"name": "released", "label": "as released", "set": {}},
              {"name": "mlp", "label": "+ MLP", "set": {"baseline": "mlp", "cg_damping": 0.5}},
              {"name": "damping", "label": "+ damping", "set": {"cg_damping": 0.1}}],
    "domains": {"Hopper": {"env_id": "Hopper-v5", "rows": "all"},
                "Walker": {"env_id": "Walker2d-v5", "rows": ["released", "damping"]}},
}


def write_run(results: Path, domain: str, row: str, seed: int, steps: list[int],
              returns: list[float], done: bool = True, settings: dict | None = None) -> Path:
    """A run directory as ours or sb3_trpo.py leaves it."""
    d = run_dir(results, domain, row, seed)
    d.mkdir(parents=True)
    lines = ["iteration,env_steps,average_return,batch_episodes"]
    lines += [f"{i},{s},{r},3" for i, (s, r) in enumerate(zip(steps, returns, strict=True))]
    (d / "progress.csv").write_text("\n".join(lines) + "\n")
    if row == SB3:
        conf = {"env": SMALL["domains"][domain]["env_id"], "steps": SMALL["steps"],
                "call": {"n_steps": 5000, "batch_size": 128},
                "versions": {"torch": "2.13.0+cpu", "sb3_contrib": "2.9.2"}}
    else:
        conf = {"config": {**cumulative_sets(SMALL)[row], "max_steps": 20000.0,
                           **(settings or {})},
                "versions": {"tensorflow": "2.21.0", "gymnasium": "1.4.0"},
                "git_commit": "abc123"}
    (d / "config.json").write_text(json.dumps(conf))
    if done:
        (d / "DONE").write_text("{}")
    return d


# ---------------------------------------------------------------------- the chain

def test_rows_are_cumulative_over_the_chain() -> None:
    sets = cumulative_sets(CFG)
    names = [row["name"] for row in CFG["chain"]]
    assert names[:3] == ["released", "mlp", "damping"]
    assert sets["released"] == {"batch_size": 5000}
    assert sets["damping"] == {"batch_size": 5000, "baseline": "mlp", "cg_damping": 0.1}
    last = sets[parity_chain.last_cumulative_row(CFG)]
    for row in CFG["chain"]:  # the chain's last row holds every row's change
        assert row["set"].items() <= last.items()
    small = cumulative_sets(SMALL)
    assert small["mlp"]["cg_damping"] == 0.5 and small["damping"]["cg_damping"] == 0.1
    assert small["damping"]["baseline"] == "mlp"


def test_selection_and_bad_names() -> None:
    assert select(SMALL) == {"Hopper": ["released", "mlp", "damping"],
                             "Walker": ["released", "damping"]}
    assert select(SMALL, ["Walker"], ["damping", "mlp"]) == {"Walker": ["damping"]}
    with pytest.raises(ParityError, match=r"unknown domain 'Cheetah'; valid: Hopper, Walker"):
        select(SMALL, ["Cheetah"])
    with pytest.raises(ParityError, match=r"unknown row 'mpl'; valid: released, mlp, damping"):
        select(SMALL, None, ["mpl"])
    bad = {**SMALL, "domains": {"Hopper": {"env_id": "Hopper-v5", "rows": ["lin"]}}}
    with pytest.raises(ParityError, match=r"row in \[domains.Hopper\] 'lin'"):
        select(bad)
    assert parity.main(["--rows", "nope", "--dry-run"]) == 2


def test_commands_for_ours_and_sb3(tmp_path: Path) -> None:
    runs = plan_runs(CFG, select(CFG), tmp_path, 2, 100000, "/peer/python")
    by_name = {r.name: r for r in runs}
    n_hopper = len(CFG["chain"]) + 1
    assert len(runs) == 2 * (n_hopper + 3)  # Walker: released, kl-mean, sb3
    assert [r.seed for r in runs] == sorted(r.seed for r in runs)  # seed-major
    released = by_name["Hopper/released/seed1"].cmd
    assert released[1:12] == ("-m", "qprop_tf", "train", "--algo", "trpo", "--env", "Hopper",
                              "--seed", "1", "--max-steps", "100000")
    assert released[-2:] == ("--set", "batch_size=5000")
    out = released[released.index("--out") + 1]
    assert out == str(tmp_path.absolute() / "parity" / "Hopper" / "released" / "seed1")
    flag = "vf_normalize_targets=false"
    for row in ("released", "mlp", "damping", "vf-epochs"):
        assert flag not in by_name[f"Hopper/{row}/seed0"].cmd
    for row in ("vf-raw", "lambda", "ortho", "fixed", "backtracks", "kl-mean"):
        cmd = by_name[f"Hopper/{row}/seed0"].cmd
        assert cmd[cmd.index(flag) - 1] == "--set"
    assert "kl_per_action_dim=true" not in by_name["Hopper/backtracks/seed0"].cmd
    for setting in ("cg_damping=0.1", "max_backtracks=10", "kl_per_action_dim=true"):
        assert setting in by_name["Walker/kl-mean/seed0"].cmd
    sb3 = by_name["Walker/sb3/seed1"].cmd
    assert sb3[:3] == ("/peer/python", "-I", str(parity_chain.SB3_SCRIPT))
    assert sb3[3:] == ("--env", "Walker2d-v5", "--seed", "1", "--steps", "100000", "--out",
                       str(tmp_path.absolute() / "parity" / "Walker" / "sb3" / "seed1"))
    assert parity_chain.set_value(True) == "true" and parity_chain.set_value((64, 64)) == "64,64"


def test_missing_peer_python_is_a_clear_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = parity.main(["--results", str(tmp_path), "--domains", "Walker", "--rows", "released",
                        "--peer-python", str(tmp_path / "nope" / "python")])
    assert code == 2
    assert "make parity" in capsys.readouterr().err
    assert not (tmp_path / "parity").exists()


# ---------------------------------------------------------------------- numbers

def test_steps_to_milestone_crossing_censoring_and_nan(tmp_path: Path) -> None:
    steps = [5000, 10000, 15000, 20000]
    crossed = load_curve(write_run(tmp_path, "Hopper", "mlp", 0, steps,
                                   [500.0, 1200.0, 900.0, 2500.0]))
    never = load_curve(write_run(tmp_path, "Hopper", "mlp", 1, steps,
                                 [100.0, 200.0, 300.0, float("nan")]))
    nan_first = load_curve(write_run(tmp_path, "Hopper", "mlp", 2, steps,
                                     [float("nan"), 1500.0, 800.0, 900.0]))
    assert crossed is not None and never is not None and nan_first is not None
    assert steps_to(crossed, 1000) == (10000.0, True)
    assert steps_to(crossed, 2000) == (20000.0, True)
    assert steps_to(never, 1000) == (20000.0, False)  # censored at its last batch (a NaN one)
    assert steps_to(nan_first, 1000) == (10000.0, True)
    assert list(nan_first.steps) == [10000, 15000, 20000]
    one_crossed = [(10000.0, True), (20000.0, False), (20000.0, False)]
    assert milestone_cell(one_crossed) == "> 20k [10k–>20k], 1/3 crossed"
    assert milestone_cell([(10000.0, True), (30000.0, True), (20000.0, False)]) == \
        "30k [10k–>20k], 2/3 crossed"
    assert milestone_cell([(20000.0, False)] * 2) == "> 20k, 0/2 crossed"
    # return near N: the batches in (N - 25000, N], NaN rows skipped
    assert return_near(crossed, 10000) == pytest.approx(850.0)
    assert return_near(never, 20000) == pytest.approx(200.0)
    assert math.isnan(return_near(crossed, 2000))


def test_unfinished_run_is_not_read(tmp_path: Path) -> None:
    d = write_run(tmp_path, "Hopper", "mlp", 0, [5000], [3000.0], done=False)
    assert load_curve(d) is None


# ---------------------------------------------------------------------- the report

def test_report_from_synthetic_runs(tmp_path: Path) -> None:
    steps = [5000, 10000, 15000, 20000]
    for seed in range(3):
        write_run(tmp_path, "Hopper", "released", seed, steps, [100, 300, 600, 900 + seed])
        write_run(tmp_path, "Hopper", SB3, seed, steps, [200, 1100, 1500, (1990, 2100, 2200)[seed]])
    write_run(tmp_path, "Hopper", "mlp", 0, steps, [400, 1200, 1600, 1800])
    write_run(tmp_path, "Hopper", "mlp", 1, steps[:2], [400, 900], done=False)
    write_run(tmp_path, "Hopper", "damping", 0, steps, [0, 0, 0, 0], settings={"cg_damping": 1})
    runs = plan_runs(SMALL, select(SMALL, ["Hopper"]), tmp_path, 3, 20000, "/peer/python")
    path = write_report(SMALL, runs, tmp_path, 20000, 3, "python -m reproduce.parity")
    md = path.read_text()
    assert path == tmp_path / "parity.md"
    assert "`python -m reproduce.parity --report-only`" in md
    assert "tensorflow 2.21.0" in md and "sb3_contrib 2.9.2" in md
    assert "n_steps=5000, batch_size=128" in md
    assert "Each row adds one change to the one above" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| # | Row | Change | Seeds finished | steps to return > 1000 |")
    assert [ln.split(" | ")[1] for ln in lines[1:]] == ["`released`", "`mlp`", "`damping`",
                                                       "`sb3`"]
    assert "| 1 | `released` | as released | 3/3 | > 20k, 0/3 crossed |" in lines[1]
    assert "| `mlp` | + MLP | 1/3 | 10k, 1/1 crossed | > 20k, 0/1 crossed | 800 | 1,250 |" \
        in lines[2]
    assert "| 0/3 |" in lines[3]  # finished with other settings: left out
    assert lines[4].endswith("| 3/3 | 10k [10k–10k], 3/3 crossed | 20k [20k–>20k], 2/3 crossed "
                             "| 650 [650–650] | 1,225 [1,198–1,250] |")
    assert "Hopper/mlp/seed1 unfinished" in md and "Hopper/mlp/seed2 not started" in md
    assert "Hopper/damping/seed0 finished with other settings: cg_damping=1" in md
    assert (tmp_path / "figures" / "parity_Hopper.png").stat().st_size > 10_000
    assert (tmp_path / "figures" / "parity_Hopper.svg").is_file()
    assert "![Hopper: return against env steps](figures/parity_Hopper.png)" in md


def test_pool_runs_logs_and_reports_failures(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ok = "import os; print('threads', os.environ['OMP_NUM_THREADS']); open('{}', 'w')"
    runs = [parity_chain.Run("Hopper", "released", 0, tmp_path / "a",
                             (sys.executable, "-c", ok.format(tmp_path / "a" / "DONE"))),
            parity_chain.Run("Hopper", "mlp", 0, tmp_path / "b",
                             (sys.executable, "-c", "import sys; print('boom'); sys.exit(3)")),
            parity_chain.Run("Hopper", "sb3", 0, tmp_path / "c", (str(tmp_path / "no-python"),))]
    failed = parity.run_all(runs, workers=2, show_progress=False)
    assert sorted(r.name for r in failed) == ["Hopper/mlp/seed0", "Hopper/sb3/seed0"]
    assert "no-python" in (tmp_path / "c" / "log.txt").read_text()
    assert "threads 1" in (tmp_path / "a" / "log.txt").read_text()
    assert (tmp_path / "a" / "DONE").is_file()
    out = capsys.readouterr().out + capsys.readouterr().err
    assert "FAILED  Hopper/mlp/seed0 (exit 3)" in out and "boom" in out


def test_the_chain_ends_at_the_trpo_strong_preset():
    """The sweep's trpo-strong (hyperparams.toml) is the parity chain's last row: every
    setting the chain changes has the same value in the preset."""
    from qprop_tf.config import load_config
    from reproduce.spec import merged_overrides

    last = parity_chain.cumulative_sets(CFG)[parity_chain.last_cumulative_row(CFG)]
    assert parity_chain.last_cumulative_row(CFG) == "kl-mean"
    chain_cfg = load_config("trpo", "Hopper", 0, dict(last))
    preset = load_config("trpo", "Hopper", 0, merged_overrides("Hopper", "trpo-strong"))
    for key in last:
        assert getattr(chain_cfg, key) == getattr(preset, key), key


def test_a_single_factor_row_is_base_plus_its_own_change():
    sets = parity_chain.cumulative_sets(CFG)
    assert sets["kl-alone"] == {"batch_size": 5000, "kl_per_action_dim": True}
    assert "baseline" not in sets["kl-alone"]
