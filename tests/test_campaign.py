"""The campaign's ledger and its collect step, on a synthetic results root (no training)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest

from qprop_tf.rundir import DONE, LOCK
from reproduce import campaign
from reproduce.ledger import cells, ledger
from reproduce.spec import resolve_runs, run_hours


def _write_run(run_dir: Path, steps: int, seconds: float, done: bool = False,
               log: str = "", lock_pid: int | None = None) -> None:
    run_dir.mkdir(parents=True)
    pd.DataFrame({"env_steps": [steps // 2, steps], "time": [seconds / 2, seconds]}).to_csv(
        run_dir / "progress.csv", index=False)
    (run_dir / "config.json").write_text(json.dumps({"git_commit": "abcdef0123"}))
    (run_dir / "log.txt").write_text(log)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "state.bin").write_bytes(b"x")
    if done:
        (run_dir / DONE).write_text("{}")
    if lock_pid is not None:
        (run_dir / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": lock_pid}))


@pytest.fixture
def root(tmp_path: Path) -> tuple[Path, list]:
    specs = resolve_runs("smoke")  # 2 domains x 3 algos x 2 seeds
    r = tmp_path / "campaign"
    _write_run(specs[0].run_dir(r), 1000, 36.0, done=True)
    _write_run(specs[1].run_dir(r), 500, 18.0, lock_pid=os.getpid())  # a live sweep holds it
    _write_run(specs[2].run_dir(r), 500, 18.0, log="Traceback (most recent call last):\n")
    _write_run(specs[3].run_dir(r), 500, 18.0)  # killed: resumes next time
    return r, specs


def test_ledger_names_every_status_and_sums_hours(root):
    r, specs = root
    runs = ledger(specs, [r])
    assert list(runs["status"].iloc[:5]) == ["done", "in flight", "failed", "paused", "to go"]
    assert runs["hours_spent"].sum() == pytest.approx((36 + 18 * 3) / 3600)
    # a run to go costs its whole estimate, a paused one what its budget has left, done none
    assert runs["hours_left"].iloc[4] == pytest.approx(run_hours(specs[4]))
    assert runs["hours_left"].iloc[0] == 0 and runs["hours_left"].iloc[2] == 0
    frac = 1 - 500 / specs[3].max_steps
    assert runs["hours_left"].iloc[3] == pytest.approx(run_hours(specs[3]) * frac)
    assert (runs["commit"].iloc[:4] == "abcdef0").all()
    c = cells(runs)
    assert len(c) == len({(s.domain, s.algo) for s in specs})
    assert c["hours_spent"].sum() == pytest.approx(runs["hours_spent"].sum())


def test_a_stale_lock_is_not_in_flight(root):
    r, specs = root
    (specs[1].run_dir(r) / LOCK).write_text(json.dumps({"host": socket.gethostname(),
                                                         "pid": 2**22 + 12345}))
    assert ledger(specs[:2], [r])["status"].tolist() == ["done", "paused"]


def test_collect_copies_finished_runs_and_parks_unfinished_progress(root, tmp_path):
    r, specs = root
    results = tmp_path / "results"
    results.mkdir()
    assert campaign.collect("smoke", r, results) == 0
    done = specs[0].run_dir(results)
    assert (done / DONE).is_file() and (done / "progress.csv").is_file()
    assert not (done / "checkpoint").exists() and not (done / LOCK).exists()
    for s in specs[1:4]:
        assert not s.run_dir(results).exists()  # never where the table reads
        parked = results / "smoke" / "inflight" / s.domain / s.algo / f"seed{s.seed}"
        assert (parked / "progress.csv").is_file()
    ledger_text = (results / "CAMPAIGN.md").read_text()
    assert "1 done, 1 in flight, 1 paused, 1 failed" in ledger_text
    # once the run finishes, the next collect copies it and drops its parked progress
    (specs[3].run_dir(r) / DONE).write_text("{}")
    campaign.collect("smoke", r, results)
    assert (specs[3].run_dir(results) / DONE).is_file()
    assert not (results / "smoke" / "inflight" / specs[3].domain / specs[3].algo
                / f"seed{specs[3].seed}").exists()


def test_seeding_copies_only_finished_committed_runs(root, tmp_path):
    r, specs = root
    results = tmp_path / "results"
    _write_run(specs[5].run_dir(results), 1000, 10.0, done=True)
    _write_run(specs[6].run_dir(results), 100, 1.0)  # unfinished: not copied
    assert campaign.seed_root(specs, results, r) == 1
    assert (specs[5].run_dir(r) / DONE).is_file() and not specs[6].run_dir(r).exists()


def test_repin_is_refused_while_runs_are_unfinished(root):
    r, specs = root
    (r / campaign.PIN).write_text(json.dumps({"commit": "0" * 40, "worktree": str(r / "wt")}))
    with pytest.raises(campaign.CampaignError, match="cannot repin: 3 unfinished"):
        campaign.pin_worktree(r, specs, repin=True)


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    assert campaign.main(["collect", "--root", str(tmp_path / "nope")]) == 2
    assert campaign.main(["status", "--root", str(tmp_path), "--profile", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("campaign: ") for line in err)
