"""``campaign stop``: a sweep and its runs stop on SIGTERM (each checkpoints), now or later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce import campaign, campaign_pins
from reproduce.campaign_pins import PID, CampaignError, autogroup_nice, detach, nice_prefix
from reproduce.campaign_stop import (
    TIMER,
    cancel_timer,
    read_timer,
    schedule_stop,
    stop_profile,
    stop_profiles,
    timer_line,
)

# A stand-in sweep: on SIGTERM it writes "<name>" to its marker and exits, as a run
# checkpoints and stops; its child (a run) takes a second to "checkpoint" first.
SWEEP = """
import os, signal, subprocess, sys, time
from pathlib import Path
name, marker, ignore = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "ignore"
def done(*_):
    marker.with_suffix(".nice-" + name).write_text(str(os.nice(0)))
    if name == "run":
        time.sleep(1.0)
    marker.with_suffix("." + name).write_text(name)
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else done)
if name == "sweep":
    child = subprocess.Popen([sys.executable, __file__, "run", *sys.argv[2:]])
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


def _fake_sweep(tmp_path: Path, root: Path, profile: str = "table1", ignore: bool = False,
                how: str = "detached", as_start: Path | None = None, nice: int = 0) -> int:
    """Start the stand-in: ``detached`` (as `start` does: a session of its own), ``child``
    (a non-leader of another group: under a shell leading its session) or ``here`` (in this
    test's own process group). Its command line is a sweep's of ``profile``, or with
    ``as_start`` the ``campaign start`` of ``profile`` and that root a drain execs into."""
    script = tmp_path / ("stand_in.py" if as_start else "reproduce.sweep_stand_in.py")
    script.write_text(SWEEP)
    marker = tmp_path / "marker"
    cmd = [sys.executable, str(script), "sweep", str(marker), "ignore" if ignore else "obey",
           "--profile", profile]
    if as_start is not None:
        cmd += ["reproduce.campaign", "start", "--root", str(as_start.resolve())]
    (root / profile).mkdir(parents=True, exist_ok=True)
    if how == "detached":
        pid, _ = detach([*nice_prefix(nice), *cmd], tmp_path, root, profile, nice)
    elif how == "child":
        shell = subprocess.Popen(["sh", "-c", '"$@" & echo $! > "$0.pid"; wait',
                                  str(tmp_path / "inner"), *cmd], start_new_session=True)
        assert _wait_for(lambda: (tmp_path / "inner.pid").is_file()
                         and (tmp_path / "inner.pid").read_text().strip())
        pid = int((tmp_path / "inner.pid").read_text())
        assert os.getpgid(pid) == shell.pid != pid
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
    try:  # a child of this test process that exited is a zombie until reaped
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _kill_stand_ins(tmp_path: Path) -> None:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(tmp_path / "marker").encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            pass


def test_stop_signals_the_sweeps_group_and_waits_for_its_runs(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root)
    assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)
    # the run got it too (its group), and stop returned only once it had "checkpointed"
    assert (tmp_path / "marker.run").read_text() == "run"
    assert (tmp_path / "marker.sweep").read_text() == "sweep"
    assert _gone(pid)
    out = capsys.readouterr().out
    assert f"SIGTERM to process group {pid}" in out and "stopped after" in out
    assert stop_profile(root, "table1")  # nothing runs any more
    assert "no sweep running" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="lowering a niceness needs privileges")
def test_a_niced_sweep_is_lifted_to_nice_0_to_reach_its_checkpoint(tmp_path, capsys):
    """A sweep at nice 19 beside busy nice-0 sweeps may not get the CPU to reach its next
    iteration boundary within the wait: stop lifts it (and its group's scheduling group)."""
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, nice=19)
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    if campaign_pins.AUTOGROUP.exists():
        assert autogroup_nice(pid) == 19
    assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)
    # both handlers ran at nice 0: lifted before the signal
    assert (tmp_path / "marker.nice-sweep").read_text() == "0"
    assert (tmp_path / "marker.nice-run").read_text() == "0"
    assert "2 process(es) lifted to nice 0" in capsys.readouterr().out
    assert _gone(pid)


@pytest.mark.parametrize("same_root", [True, False])
def test_a_drains_handover_to_its_start_is_stopped_for_its_root_only(
        tmp_path, capsys, same_root):
    """A finished drain's script execs ``campaign start``, keeping the pid in the pid file
    until that start writes its sweep's: a stop then stops the start, so no sweep starts.
    A start of another root is not this root's."""
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, as_start=root if same_root else tmp_path / "other")
    try:
        assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)
        out = capsys.readouterr().out
        assert _gone(pid) == same_root
        assert (f"SIGTERM to process group {pid}" in out) == same_root
        assert ("is not this profile's sweep now" in out) != same_root
    finally:
        _kill_stand_ins(tmp_path)


def test_every_sweep_is_signalled_before_any_is_waited_for(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    root = tmp_path / "root"
    _fake_sweep(a, root, "table1", ignore=True)
    _fake_sweep(b, root, "smoke")
    try:
        t0 = time.time()
        assert not stop_profiles(root, ["table1", "smoke"], wait_seconds=3, poll=0.05)
        # smoke's run "checkpointed" (1 s) while table1 was still being waited for (3 s)
        assert (b / "marker.run").stat().st_mtime - t0 < 2.5
        assert "table1: still running after 3 s" in capsys.readouterr().err
    finally:
        _kill_stand_ins(a)


def test_a_sweep_not_leading_its_group_gets_the_signal_alone(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, how="child")
    try:
        assert stop_profile(root, "table1", wait_seconds=30, poll=0.05)
        assert (tmp_path / "marker.sweep").exists()
        assert f"SIGTERM to pid {pid}" in capsys.readouterr().out
        time.sleep(1.5)
        assert not (tmp_path / "marker.run").exists()  # its run was not signalled
    finally:
        _kill_stand_ins(tmp_path)


def test_pids_that_are_not_the_profiles_sweep_are_not_signalled(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, how="here")  # a sweep, but in this test's group
    try:
        assert stop_profile(root, "table1", wait_seconds=1)  # and pytest lives on
        assert "in this command's own process group" in capsys.readouterr().out
        assert not _gone(pid) and not (tmp_path / "marker.sweep").exists()
        (root / "smoke").mkdir()
        (root / "smoke" / PID).write_text(f"{pid}\n")  # table1's sweep, not smoke's
        assert stop_profile(root, "smoke", wait_seconds=1)
        assert "is not this profile's sweep now" in capsys.readouterr().out
        (root / "table1" / PID).write_text(f"{os.getpid()}\n")  # a stale pid: pytest's
        assert stop_profile(root, "table1", wait_seconds=1)
        assert "is not this profile's sweep now" in capsys.readouterr().out
    finally:
        _kill_stand_ins(tmp_path)


def test_a_sweep_that_does_not_stop_is_reported_not_killed(tmp_path, capsys):
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root, ignore=True)
    try:
        assert not stop_profile(root, "table1", wait_seconds=0.5, poll=0.05)
        assert "still running after 0 s" in capsys.readouterr().err
        assert not _gone(pid)
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_a_scheduled_stop_fires_later_and_status_shows_it(tmp_path, capsys):
    root = tmp_path / "root"
    with pytest.raises(CampaignError, match="more than 0"):
        schedule_stop(root, "table1", 0)
    with pytest.raises(CampaignError, match="at most"):
        schedule_stop(root, "table1", float("inf"))
    pid = _fake_sweep(tmp_path, root)
    first = schedule_stop(root, "table1", 10)  # replaced by the next one
    timer = schedule_stop(root, "table1", 0.05)  # in 3 s
    assert "replacing the stop scheduled at" in capsys.readouterr().out
    assert _wait_for(lambda: _gone(first["pid"]), 10)
    assert read_timer(root)["pid"] == timer["pid"]
    assert "stop scheduled at 20" in timer_line(root) and "(table1)" in timer_line(root)
    try:
        assert _wait_for(lambda: (tmp_path / "marker.sweep").exists(), 60)
        assert _wait_for(lambda: (tmp_path / "marker.run").exists(), 30)
        assert _wait_for(lambda: read_timer(root) is None, 60)
        assert timer_line(root) == "" and not (root / TIMER).exists()  # it removed it
        # it removes the file as it fires, before its stop waits; its log is complete
        # only when it has exited
        assert _wait_for(lambda: _gone(timer["pid"]), 60)
    finally:
        if not _gone(pid):
            os.killpg(pid, signal.SIGKILL)
    assert "stopped after" in Path(timer["log"]).read_text()


def test_a_stale_timer_file_is_no_timer_and_nothing_is_signalled(tmp_path):
    """STOP.json outliving its timer, its pid reused (here: this test's)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / TIMER).write_text(json.dumps({"pid": os.getpid(), "at": "2026-01-01T00:00:00",
                                          "profile": None}))
    assert read_timer(root) is None and timer_line(root) == ""
    assert cancel_timer(root) is None and not (root / TIMER).exists()  # pytest lives on


def test_a_timer_is_returned_only_once_procfs_shows_its_command(tmp_path, monkeypatch):
    """Just after the exec a new process's command line reads empty (the CI failure of
    2026-11-28): schedule_stop waits it out, so the timer it returns is readable at once."""
    from reproduce import campaign_stop
    real, calls = campaign_stop.command_line, []

    def late(pid: int) -> str | None:
        calls.append(pid)
        return "" if len(calls) <= 3 else real(pid)

    monkeypatch.setattr(campaign_stop, "command_line", late)
    root = tmp_path / "root"
    timer = schedule_stop(root, "table1", 30)
    try:
        assert len(calls) >= 4 and read_timer(root)["pid"] == timer["pid"]
    finally:
        assert cancel_timer(root) is not None


def test_the_command_stops_or_schedules(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    assert campaign.main(["stop", "--root", str(root), "--profile", "table1"]) == 0
    assert "table1: no sweep running" in capsys.readouterr().out
    assert campaign.main(["stop", "--root", str(root), "--in", "-1"]) == 2
    assert "more than 0" in capsys.readouterr().err
    assert campaign.main(["stop", "--root", str(root), "--profile", "table1", "--in", "30"]) == 0
    try:
        assert "table1: stop scheduled at" in capsys.readouterr().out
        assert read_timer(root) is not None
    finally:
        assert cancel_timer(root) is not None
    assert read_timer(root) is None and not (root / TIMER).exists()


def test_start_schedules_a_stop_only_when_asked_and_checks_it_first(tmp_path, monkeypatch,
                                                                     capsys):
    """``start`` must never stop what it starts; ``--stop-in`` schedules, nothing more, and a
    bad delay is refused before anything starts; a start that failed for one profile still
    gets its stop (the others' sweeps run)."""
    root = tmp_path / "root"
    pid = _fake_sweep(tmp_path, root)
    started: list[int] = []
    code = {"value": 0}

    def fake_start(*args):
        started.append(1)
        return code["value"]

    monkeypatch.setattr(campaign, "start", fake_start)  # the sweep "started" is the stand-in
    args = ["start", "--root", str(root), "--profile", "table1"]
    try:
        assert campaign.main(args) == 0
        time.sleep(0.5)
        assert not _gone(pid) and not (tmp_path / "marker.sweep").exists()
        assert read_timer(root) is None
        assert campaign.main([*args, "--stop-in", "0"]) == 2 and len(started) == 1
        assert "more than 0" in capsys.readouterr().err
        code["value"] = 2
        assert campaign.main([*args, "--stop-in", "30"]) == 2
        assert "stop scheduled at" in capsys.readouterr().out
        assert read_timer(root) is not None and not _gone(pid)
    finally:
        cancel_timer(root)
        os.killpg(pid, signal.SIGKILL)
