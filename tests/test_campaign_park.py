"""Small checkpoints parked by ``collect`` resume on a fresh machine (``campaign_park``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from qprop_tf.rundir import DONE
from reproduce.campaign_losses import loss, parked_dir
from reproduce.campaign_park import park_checkpoint, restore_parked
from reproduce.spec import resolve_runs

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["train", "--algo", "trpo", "--env", "Hopper", "--seed", "1", "--batch-size", "300",
        "--max-steps", "2400", "--set", "checkpoint_minutes=0", "--no-progress"]


def _rows(out: Path) -> int:
    try:
        return max(0, len((out / "progress.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def _cli(out: Path, stop_after: int | None = None) -> subprocess.CompletedProcess:
    """The CLI on ``out``; with ``stop_after``, SIGTERM once progress.csv has that many rows
    (it checkpoints at the next boundary and exits), as `campaign stop` does."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "qprop_tf", *ARGS, "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if stop_after is not None:
        deadline = time.monotonic() + 240
        while _rows(out) < stop_after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _park(run: Path, parked: Path) -> bool:
    """What collect does with an unfinished run: the checkpoint first, then the files."""
    parked.mkdir(parents=True, exist_ok=True)
    ok = park_checkpoint(run, parked)
    for name in ("progress.csv", "spec.json", "config.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, parked / name)
    return ok


def test_a_parked_trpo_checkpoint_resumes_on_a_fresh_machine(tmp_path):
    spec = next(s for s in resolve_runs("smoke") if s.algo == "trpo")
    old_root, fresh, results = tmp_path / "old", tmp_path / "fresh", tmp_path / "results"
    run = spec.run_dir(old_root)
    stopped = _cli(run, stop_after=3)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    parked = parked_dir(results, "smoke", spec)
    assert _park(run, parked)
    latest = (parked / "checkpoint" / "latest").read_text().strip()
    assert (parked / "checkpoint" / latest / "state.npz").is_file()
    commit = json.loads((run / "config.json").read_text())["git_commit"]
    # another commit's pin never resumes it; the commit it ran at does
    assert restore_parked("smoke", [spec], fresh, results, "0" * 40) == []
    assert restore_parked("smoke", [spec], fresh, results, commit) == [spec.key]
    assert restore_parked("smoke", [spec], fresh, results, commit) == []  # there already
    resumed = _cli(spec.run_dir(fresh))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from checkpoint {latest}" in resumed.stdout
    progress = pd.read_csv(spec.run_dir(fresh) / "progress.csv")
    assert (spec.run_dir(fresh) / DONE).is_file()
    assert list(progress.iteration) == list(range(len(progress))) and len(progress) == 8
    # stopped at a boundary: every parked row was checkpointed, so nothing was lost
    assert loss(spec, parked, spec.run_dir(fresh)) is None


def test_a_checkpoint_with_replay_chunks_or_too_large_is_not_parked(tmp_path, monkeypatch):
    from reproduce import campaign_park

    run, parked = tmp_path / "run", tmp_path / "parked"
    (run / "checkpoint" / "ckpt-000003").mkdir(parents=True)
    (run / "checkpoint" / "ckpt-000003" / "state.npz").write_bytes(b"x" * 1000)
    (run / "checkpoint" / "latest").write_text("ckpt-000003\n")
    parked.mkdir()
    assert park_checkpoint(run, parked) and (parked / "checkpoint" / "latest").is_file()
    monkeypatch.setattr(campaign_park, "PARK_MAX_BYTES", 999)  # grew too large: unparked
    assert not park_checkpoint(run, parked) and not (parked / "checkpoint").exists()
    monkeypatch.setattr(campaign_park, "PARK_MAX_BYTES", 10**6)
    (run / "checkpoint" / "replay").mkdir()
    (run / "checkpoint" / "replay" / "chunk-000000000000.npz").write_bytes(b"r")
    assert not park_checkpoint(run, parked) and not (parked / "checkpoint").exists()
    # no checkpoint yet (or rotated away while read): nothing parked, nothing removed
    assert not park_checkpoint(tmp_path / "none", parked)
