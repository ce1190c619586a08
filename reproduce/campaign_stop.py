"""``python -m reproduce.campaign stop [--profile P] [--in MINUTES]``: stop campaign sweeps
so that every run checkpoints, now or at a set time.

Now: SIGTERM to each selected profile's sweep (``<root>/<profile>/sweep.pid``), then wait
until it and its runs have exited (each run checkpoints at its next iteration boundary and
stops; ``make campaign`` resumes it). Every sweep ``start`` launches is detached into a
session of its own, so the signal goes to its process group: a drain's lanes and runs stop
with it. A sweep started otherwise (its pid not its group's leader) gets it alone, and a
pid that is no sweep's now (its command line names neither ``reproduce.sweep`` nor
``drain.sh``: a stale pid file) gets nothing.

``--in MINUTES`` schedules that stop instead: a detached timer (its pid and time in
``<root>/STOP.json``) runs ``stop`` then, reading the pids afresh, so a sweep restarted
meanwhile is the one it stops. A new schedule replaces the old one; ``start --stop-in M``
starts and schedules in one command. This is how a working session ends without losing the
minutes since the last checkpoint when it is killed: collect and commit, restart with a stop
scheduled before the end, and the next session's collect picks up what it did.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reproduce.campaign_pins import CampaignError, detach, running_pid
from reproduce.spec import REPO_ROOT

TIMER = "STOP.json"
SWEEP_MARKS = ("reproduce.sweep", "drain.sh")
"""What the command line of a sweep ``start`` launched holds (a sweep; a drain's script)."""


def _stat(pid_dir: Path) -> tuple[str, int] | None:
    """(state, process group) from ``/proc/<pid>/stat``, None when it is gone."""
    try:
        fields = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def _alive(pid: int, group: bool) -> bool:
    """Whether ``pid`` (``group``: any process of its group) still runs; a zombie, waiting
    for its parent to reap it, does not."""
    procs = Path("/proc")
    if not procs.is_dir():  # no procfs: the signal test, which counts a zombie as alive
        try:
            (os.killpg if group else os.kill)(pid, 0)
        except ProcessLookupError:
            return False
        return True
    if not group:
        stat = _stat(procs / str(pid))
        return stat is not None and stat[0] != "Z"
    return any(stat is not None and stat[1] == pid and stat[0] != "Z"
               for stat in map(_stat, procs.glob("[0-9]*")))


def command_line(pid: int) -> str | None:
    """``pid``'s command line, words joined by spaces; None when unknown (no procfs)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def stop_profile(root: Path, profile: str, wait_seconds: float = 600.0,
                 poll: float = 1.0) -> bool:
    """SIGTERM the profile's sweep (its group when it leads one) and wait for it to exit;
    True when nothing of it runs any more (or nothing ran)."""
    pid = running_pid(root, profile)
    if pid is None:
        print(f"campaign: {profile}: no sweep running")
        return True
    cmd = command_line(pid)
    if cmd is not None and not any(mark in cmd for mark in SWEEP_MARKS):
        print(f"campaign: {profile}: pid {pid} in {root / profile / 'sweep.pid'} is not a "
              f"sweep now ({cmd[:80]!r}): a stale pid file; nothing signalled")
        return True
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return True
    (os.killpg if group else os.kill)(pid, signal.SIGTERM)
    print(f"campaign: {profile}: SIGTERM to {'process group' if group else 'pid'} {pid}; "
          "waiting for its runs to checkpoint", flush=True)
    t0 = time.monotonic()
    while _alive(pid, group):
        if time.monotonic() - t0 > wait_seconds:
            print(f"campaign: {profile}: still running after {wait_seconds:.0f} s "
                  f"(pid {pid}); not killed", file=sys.stderr)
            return False
        time.sleep(poll)
    print(f"campaign: {profile}: stopped after {time.monotonic() - t0:.0f} s; its runs "
          "resume from their checkpoints at the next `make campaign`")
    return True


def read_timer(root: Path) -> dict | None:
    """The scheduled stop (``{"pid", "at", "profile"}``) while its timer is alive, else None."""
    try:
        timer = json.loads((root / TIMER).read_text())
        alive = _alive(int(timer["pid"]), group=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return timer if alive else None


def cancel_timer(root: Path) -> dict | None:
    """Stop a scheduled stop's timer (its whole session); the timer it was, or None."""
    timer = read_timer(root)
    if timer is not None:
        try:
            os.killpg(int(timer["pid"]), signal.SIGTERM)
        except OSError:
            pass
    (root / TIMER).unlink(missing_ok=True)
    return timer


def schedule_stop(root: Path, profile: str | None, minutes: float) -> dict:
    """Start a detached timer that runs ``campaign stop`` (for ``profile``, or every pinned
    profile) in ``minutes``; it replaces any earlier one. Returns what ``STOP.json`` holds."""
    if not minutes > 0:
        raise CampaignError(f"--in must be a positive number of minutes, not {minutes!r}")
    cancel_timer(root)
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    later = [sys.executable, "-m", "reproduce.campaign", "stop", "--root", str(root),
             *(["--profile", profile] if profile else [])]
    cmd = ["sh", "-c", f"sleep {minutes * 60:.0f} && exec {shlex.join(later)}"]
    pid, log = detach(cmd, REPO_ROOT, root, "stop")
    timer = {"pid": pid, "at": at.isoformat(timespec="seconds"), "profile": profile,
             "log": str(log)}
    (root / TIMER).write_text(json.dumps(timer, indent=1) + "\n")
    return timer


def timer_line(root: Path) -> str:
    """``"; stop scheduled at HH:MM UTC"`` while a timer is set, else ``""``."""
    timer = read_timer(root)
    if timer is None:
        return ""
    at = datetime.fromisoformat(timer["at"])
    return (f"; stop scheduled at {at:%H:%M} UTC" + (f" ({timer['profile']})"
                                                     if timer.get("profile") else ""))


def stop(root: Path, profile: str | None, profiles: list[str], minutes: float | None) -> int:
    """``campaign stop``: stop ``profiles``' sweeps now (``minutes`` None; 1 if one is still
    running after the wait), or schedule the stop of ``profile`` (None: every pinned one)."""
    if minutes is None:
        return 0 if all([stop_profile(root, p) for p in profiles]) else 1
    at = schedule_stop(root, profile, minutes)["at"]
    print(f"campaign: {profile or 'every pinned profile'}: stop scheduled at {at} UTC "
          "(`python -m reproduce.campaign status` shows it)")
    return 0
