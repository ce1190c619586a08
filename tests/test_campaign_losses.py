"""Work lost when an unfinished campaign run cannot resume where its committed progress stood
(``reproduce.campaign_losses``), on synthetic roots: no training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reproduce import campaign
from reproduce.campaign_losses import RECOMPUTED, RESTARTED, loss, read_losses
from reproduce.spec import resolve_runs


def _progress(run_dir: Path, cpu: list[float], steps_per_row: int = 1000) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    n = len(cpu)
    pd.DataFrame({"iteration": range(n),
                  "env_steps": [steps_per_row * (i + 1) for i in range(n)],
                  "average_return": [float(i) for i in range(n)],
                  "time": [1.5 * c for c in cpu], "cpu_time": cpu}).to_csv(
        run_dir / "progress.csv", index=False)


@pytest.fixture
def setup(tmp_path: Path):
    spec = resolve_runs("smoke")[1]
    root, results = tmp_path / "campaign", tmp_path / "results"
    results.mkdir()
    return spec, root, results


def _parked(results: Path, spec) -> Path:
    return results / "smoke" / "inflight" / spec.domain / spec.algo / f"seed{spec.seed}"


def test_a_run_that_resumed_past_its_parked_rows_lost_nothing(setup):
    spec, root, results = setup
    _progress(spec.run_dir(root), [10.0, 20.0, 30.0])
    campaign.collect("smoke", root, results)  # parks 3 rows
    _progress(spec.run_dir(root), [10.0, 20.0, 30.0, 40.0, 50.0])  # went on from them
    campaign.collect("smoke", root, results)
    assert read_losses(results, "smoke").empty
    assert "lost to interruptions" not in (results / "smoke" / "CAMPAIGN.md").read_text()


def test_a_run_started_again_from_zero_loses_all_its_parked_work_counted_once(setup, capsys):
    spec, root, results = setup
    _progress(_parked(results, spec), [3600.0, 7200.0, 9000.0])  # committed by a past session
    _progress(spec.run_dir(root), [1800.1])  # a fresh machine: same seed, other clock times
    campaign.collect("smoke", root, results)
    lost = read_losses(results, "smoke")
    assert len(lost) == 1
    row = lost.iloc[0]
    assert (row.domain, row.algo, row.seed) == (spec.domain, spec.algo, spec.seed)
    assert row.kept_iterations == 0 and row.cause == RESTARTED
    assert row.lost_cpu_hours == pytest.approx(2.5) and row.lost_env_steps == 3000
    assert "LOST:" in capsys.readouterr().out
    ledger_text = (results / "smoke" / "CAMPAIGN.md").read_text()
    assert "**CPU-hours lost to interruptions** (at least; not in the hours spent): 2.5" \
        in ledger_text
    # the parked copy is now the new run's: collecting again records nothing more
    campaign.collect("smoke", root, results)
    assert len(read_losses(results, "smoke")) == 1


def test_a_run_resumed_from_an_older_checkpoint_loses_the_rows_it_recomputed(setup):
    spec, root, results = setup
    _progress(_parked(results, spec), [100.0, 200.0, 300.0, 400.0])
    _progress(spec.run_dir(root), [100.0, 200.0, 290.0, 380.0, 470.0])  # cut after row 2
    found = loss(spec, _parked(results, spec), spec.run_dir(root))
    assert found is not None and found.cause == RECOMPUTED
    assert found.kept_iterations == 2 and found.lost_env_steps == 2000
    assert found.lost_cpu_hours == pytest.approx(200 / 3600, abs=1e-4)


def test_a_parked_row_copied_mid_write_is_not_counted_as_lost(setup):
    spec, root, results = setup
    _progress(spec.run_dir(root), [10.0, 20.0, 30.0])
    parked = _parked(results, spec)
    parked.mkdir(parents=True)
    text = (spec.run_dir(root) / "progress.csv").read_text()
    (parked / "progress.csv").write_text(text + "3,4000,3.0,4")  # a last line without newline
    assert loss(spec, parked, spec.run_dir(root)) is None
    # the same copy against a run that has no progress at all: its whole rows are lost
    gone = loss(spec, parked, root / "nowhere")
    assert gone is not None and gone.lost_cpu_hours == pytest.approx(30 / 3600, abs=1e-4)

