"""``campaign stop``: a sweep and its runs stop on SIGTERM (each checkpoints), now or later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce import campaign
from reproduce.campaign_pins import PID, CampaignError, detach
from reproduce.campaign_stop import read_timer, schedule_stop, stop_profile, timer_line

# A stand-in sweep: on SIGTERM it writes "<name>" to its marker and exits, as a run
# checkpoints and stops; with a child (a run) that does the same.
SWEEP = """
import signal, subprocess, sys, time
from pathlib import Path
name, marker, ignore = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "ignore"
def done(*_):
    marker.with_suffix("." + name).write_text(name)
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else done)
if name == "sweep":
    child = subprocess.Popen([sys.executable, __file__, "run", str(marker), sys.argv[3]])
marker.with_suffix(".ready-" + name).write_text("")
while True:
    time.sleep(0.05)
"""


def _wait_for(predicate, seconds: float = 30.0) -> bool:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > seconds:
            return False
        time.sleep(0.05)
    return True


def _fake_sweep(tmp_path: Path, root: Path, profile: str, ignore: bool = False,
                detached: bool = True) -> int:
    script = tmp_path / "reproduce.sweep_stand_in.py"  # a sweep's command line
    script.write_text(SWEEP)
    marker = tmp_path / "marker"
    cmd = [sys.executable, str(script), "sweep", str(marker), "ignore" if ignore else "obey"]
    (root / profile).mkdir(parents=True, exist_ok=True)
    if detached:
        pid, _ = detach(cmd, tmp_path, root, profile)
    else:
        pid = subprocess.Popen(cmd).pid
    (root / profile / PID).write_text(f"{pid}\n")
    assert _wait_for(lambda: (tmp_path / "marker.ready-run").exists()
                     and (tmp_path / "marker.ready-sweep").exists())
    return pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a child of this test process that exited is a zombie until reaped
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_stop_signals_the_sweeps_group_and_waits_for_its_runs(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, "table1")
    assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)
    assert (tmp_path / "marker.sweep").read_text() == "sweep"
    assert (tmp_path / "marker.run").read_text() == "run"  # the run got it too: its group
    assert _gone(pid)
    out = capsys.readouterr().out
    assert f"SIGTERM to process group {pid}" in out and "stopped after" in out
    assert stop_profile(root, "table1")  # nothing runs any more
    assert "no sweep running" in capsys.readouterr().out


def test_a_sweep_not_leading_its_group_gets_the_signal_alone(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, "table1", detached=False)  # in this test's group
    assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)  # and pytest lives on
    assert (tmp_path / "marker.sweep").exists()
    assert f"SIGTERM to pid {pid}" in capsys.readouterr().out
    time.sleep(0.5)
    assert not (tmp_path / "marker.run").exists()  # its run was not signalled
    for proc in Path("/proc").glob("[0-9]*"):  # end it here
        try:
            if str(tmp_path / "marker").encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            pass


def test_a_sweep_that_does_not_stop_is_reported_not_killed(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, "table1", ignore=True)
    try:
        assert not stop_profile(root, "table1", wait_seconds=0.5, poll=0.05)
        assert "still running after 0 s" in capsys.readouterr().err
        assert not _gone(pid)
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_a_scheduled_stop_fires_later_and_status_shows_it(tmp_path, capsys):
    root = tmp_path / "root"
    with pytest.raises(CampaignError, match="positive number of minutes"):
        schedule_stop(root, "table1", 0)
    pid = _fake_sweep(tmp_path, root, "table1")
    first = schedule_stop(root, "table1", 10)  # replaced by the next one
    timer = schedule_stop(root, "table1", 0.02)  # in about a second
    assert _wait_for(lambda: _gone(first["pid"]), 10)
    assert read_timer(root)["pid"] == timer["pid"]
    assert "stop scheduled at" in timer_line(root) and "(table1)" in timer_line(root)
    assert not (tmp_path / "marker.sweep").exists()  # not yet
    try:
        assert _wait_for(lambda: (tmp_path / "marker.sweep").exists(), 60)
        assert _wait_for(lambda: (tmp_path / "marker.run").exists(), 30)
        assert _wait_for(lambda: read_timer(root) is None, 60)
        assert timer_line(root) == ""
    finally:
        if not _gone(pid):
            os.killpg(pid, signal.SIGKILL)
    assert "stopped after" in Path(timer["log"]).read_text()


def test_the_command_stops_or_schedules(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    assert campaign.main(["stop", "--root", str(root), "--profile", "table1"]) == 0
    assert "table1: no sweep running" in capsys.readouterr().out
    assert campaign.main(["stop", "--root", str(root), "--in", "-1"]) == 2
    assert "positive number of minutes" in capsys.readouterr().err
    assert campaign.main(["stop", "--root", str(root), "--profile", "table1", "--in", "30"]) == 0
    try:
        assert "table1: stop scheduled at" in capsys.readouterr().out
        assert read_timer(root) is not None
    finally:
        from reproduce.campaign_stop import cancel_timer

        assert cancel_timer(root) is not None
    assert read_timer(root) is None and not (root / "STOP.json").exists()


def test_start_schedules_a_stop_only_when_asked(tmp_path, monkeypatch, capsys):
    """``start`` must never stop what it starts; ``--stop-in`` schedules, nothing more."""
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, "table1")
    monkeypatch.setattr(campaign, "start", lambda *a: 0)  # the sweep "started" is the fake
    try:
        assert campaign.main(["start", "--root", str(root), "--profile", "table1"]) == 0
        time.sleep(0.5)
        assert not _gone(pid) and not (tmp_path / "marker.sweep").exists()
        assert read_timer(root) is None
        assert campaign.main(["start", "--root", str(root), "--profile", "table1",
                              "--stop-in", "30"]) == 0
        assert "stop scheduled at" in capsys.readouterr().out
        assert read_timer(root) is not None and not _gone(pid)
    finally:
        from reproduce.campaign_stop import cancel_timer

        cancel_timer(root)
        os.killpg(pid, signal.SIGKILL)


def test_a_pid_file_naming_another_program_is_not_signalled(tmp_path, capsys):
    """A stale sweep.pid whose pid now belongs to something else (here: this test)."""
    root = tmp_path / "root"
    (root / "table1").mkdir(parents=True)
    (root / "table1" / PID).write_text(f"{os.getpid()}\n")
    assert stop_profile(root, "table1", wait_seconds=1)  # and pytest lives on
    assert "is not a sweep now" in capsys.readouterr().out
