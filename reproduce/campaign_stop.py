"""``python -m reproduce.campaign stop [--profile P] [--in MINUTES]``: stop campaign sweeps
so that every run checkpoints, now or at a set time.

Now: SIGTERM to each selected profile's sweep (``<root>/<profile>/sweep.pid``), then wait
until it and its runs have exited (each run checkpoints at its next iteration boundary and
stops; ``make campaign`` resumes it). A niced sweep is lifted to niceness 0 as it is
signalled (:func:`lift_priority`), so it gets there while other sweeps hold the cores.
Every sweep ``start`` launches is detached into a session of its own, so the signal goes to
its process group: a drain's lanes and runs stop with it. A sweep started otherwise (its
pid not its group's leader) gets it alone, and a pid that is not the profile's sweep now
(its command line neither ``reproduce.sweep ... --profile <profile>`` nor
``<profile>/drain.sh``, nor the ``campaign start --profile <profile> --root <root>`` a
drain ends in: a stale pid file), or that shares the caller's process group, gets nothing:
a drain's handover to its start is stopped too (no sweep starts), leaving only the instant
between that start's launch and its pid file. Every sweep is signalled first, then waited
for.

``--in MINUTES`` schedules that stop instead: a detached timer (its pid and time in
``<root>/STOP.json``, which it removes when it fires) runs ``stop`` then, reading the pids
afresh, so a sweep restarted meanwhile is the one it stops. A new schedule replaces the
root's old one (one timer a root); ``start --stop-in M``
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

from qprop_tf.rundir import proc_stat
from reproduce.campaign_pins import CampaignError, detach, running_pid
from reproduce.spec import REPO_ROOT

TIMER = "STOP.json"
SWEEP_MARKS = ("reproduce.sweep", "drain.sh", "reproduce.campaign start")
"""What the command line of a sweep ``start`` launched holds (a sweep; a drain's script;
the ``campaign start`` a finished drain's script execs into, keeping its pid and pid file,
until that start writes its new sweep's pid there)."""


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
        stat = proc_stat(pid)
        return stat is not None and stat[0] != "Z"
    return any(stat is not None and stat[1] == pid and stat[0] != "Z"
               for stat in (proc_stat(d.name) for d in procs.glob("[0-9]*")))


def command_line(pid: int) -> str | None:
    """``pid``'s command line, words joined by spaces; None when unknown (no procfs)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def sweep_pid(root: Path, profile: str) -> int | None:
    """The profile's sweep pid when it is safe to signal: alive, its command line a sweep of
    this profile's (``reproduce.sweep ... --profile <profile>``) or its drain's script, and not
    in the caller's own process group; None otherwise (said why, when there is a pid)."""
    pid = running_pid(root, profile)
    if pid is None:
        print(f"campaign: {profile}: no sweep running")
        return None
    cmd = command_line(pid)
    of_profile = f"--profile {profile} " in (cmd or "") + " "
    ours = cmd is None or (SWEEP_MARKS[0] in cmd and of_profile) or (
        f"/{profile}/{SWEEP_MARKS[1]}" in cmd) or (
        SWEEP_MARKS[2] in cmd and of_profile and f"--root {root.resolve()} " in cmd + " ")
    try:
        own_group = os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        return None
    if not ours or own_group:
        print(f"campaign: {profile}: pid {pid} in {root / profile / 'sweep.pid'} is not "
              f"this profile's sweep now ({(cmd or '?')[:80]!r}"
              + (", in this command's own process group" if own_group else "")
              + "): a stale pid file; nothing signalled")
        return None
    return pid


def _members(pid: int, group: bool) -> list[int]:
    """``pid`` and, for a group it leads, every live process of that group."""
    if not group or not Path("/proc").is_dir():
        return [pid]
    return [int(d.name) for d in Path("/proc").glob("[0-9]*")
            if (st := proc_stat(d.name)) is not None and st[1] == pid and st[0] != "Z"]


def lift_priority(pid: int, group: bool) -> int:
    """Give a stopping sweep (its group, its autogroup) niceness 0, so that it reaches its
    runs' next iteration boundary, and the checkpoint there, while other sweeps keep the
    cores busy: a sweep at nice 19 beside a busy nice-0 one got 15 s of CPU in 18 minutes
    and did not stop in the 600 s wait. Best effort (lowering niceness needs privileges);
    returns how many processes it lifted."""
    lifted = 0
    for p in _members(pid, group):
        try:
            if os.getpriority(os.PRIO_PROCESS, p) > 0:
                os.setpriority(os.PRIO_PROCESS, p, 0)
                lifted += 1
        except OSError:
            pass
    try:  # the session's scheduling group (campaign_pins.autogroup_prefix)
        Path(f"/proc/{pid}/autogroup").write_text("0")
    except OSError:
        pass
    return lifted


def _signal(pid: int, group: bool) -> None:
    """SIGTERM ``pid``'s process group when it leads one (``group``: every sweep ``start``
    launches is a session of its own), else ``pid`` alone."""
    (os.killpg if group else os.kill)(pid, signal.SIGTERM)


def stop_profiles(root: Path, profiles: list[str], wait_seconds: float = 600.0,
                  poll: float = 1.0) -> bool:
    """SIGTERM every profile's sweep first, then wait until each has exited; True when
    nothing of them runs any more (or nothing ran), False when one outlived the wait."""
    signalled: dict[str, tuple[int, bool]] = {}
    for profile in profiles:
        pid = sweep_pid(root, profile)
        if pid is None:
            continue
        try:
            group = os.getpgid(pid) == pid
            lifted = lift_priority(pid, group)  # first: the signal handlers run lifted
            _signal(pid, group)
        except ProcessLookupError:
            continue
        signalled[profile] = pid, group
        print(f"campaign: {profile}: SIGTERM to {'process group' if group else 'pid'} {pid}"
              + (f" ({lifted} process(es) lifted to nice 0 to get there)" if lifted else "")
              + "; waiting for its runs to checkpoint", flush=True)
    t0, ok = time.monotonic(), True
    for profile, (pid, group) in signalled.items():
        while _alive(pid, group) and time.monotonic() - t0 <= wait_seconds:
            time.sleep(poll)
        if _alive(pid, group):
            print(f"campaign: {profile}: still running after {wait_seconds:.0f} s "
                  f"(pid {pid}); not killed", file=sys.stderr)
            ok = False
            continue
        print(f"campaign: {profile}: stopped after {time.monotonic() - t0:.0f} s; its runs "
              "resume from their checkpoints at the next `make campaign`")
    return ok


def stop_profile(root: Path, profile: str, wait_seconds: float = 600.0,
                 poll: float = 1.0) -> bool:
    """:func:`stop_profiles` for one profile."""
    return stop_profiles(root, [profile], wait_seconds, poll)


def _timer_mark(root: Path) -> str:
    return f"reproduce.campaign stop --root {root.resolve()}"


def read_timer(root: Path) -> dict | None:
    """The scheduled stop (``{"pid", "at", "profile", "log"}``) while its timer runs, else
    None: its pid alive and still the timer (its command line the stop of this root)."""
    try:
        timer = json.loads((root / TIMER).read_text())
        pid = int(timer["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid, group=False) or _timer_mark(root) not in (command_line(pid) or ""):
        return None
    return timer


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


MAX_MINUTES = 7 * 24 * 60


def check_minutes(minutes: float) -> float:
    """A stop's delay: a finite number of minutes in (0, a week]."""
    if not 0 < minutes <= MAX_MINUTES:
        raise CampaignError(f"a stop's delay must be more than 0 and at most {MAX_MINUTES} "
                            f"minutes (a week), not {minutes!r}")
    return minutes


def schedule_stop(root: Path, profile: str | None, minutes: float) -> dict:
    """Start a detached timer that runs ``campaign stop`` (for ``profile``, or every pinned
    profile) in ``minutes``; it replaces any earlier one of the root (named on stdout).
    Returns what ``STOP.json`` holds."""
    check_minutes(minutes)
    root = root.resolve()
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    old = cancel_timer(root)
    if old is not None:
        print(f"campaign: replacing the stop scheduled at {old['at']} UTC"
              + (f" ({old['profile']})" if old.get("profile") else ""))
    later = [sys.executable, "-m", "reproduce.campaign", "stop", "--root", str(root),
             *(["--profile", profile] if profile else [])]
    cmd = ["sh", "-c", f"sleep {minutes * 60:.0f} && exec {shlex.join(later)}"]
    root.mkdir(parents=True, exist_ok=True)
    pid, log = detach(cmd, REPO_ROOT, root, "stop")
    # Popen returns once the exec has begun, but the new command line shows in procfs a
    # moment later: till then read_timer would take the timer for a stale pid
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        shown = command_line(pid)
        if shown is None or _timer_mark(root) in shown:  # no procfs, or there
            break
        time.sleep(0.01)
    timer = {"pid": pid, "at": at.isoformat(timespec="seconds"), "profile": profile,
             "log": str(log)}
    (root / TIMER).write_text(json.dumps(timer, indent=1) + "\n")
    return timer


def timer_line(root: Path) -> str:
    """``"; stop scheduled at <date> HH:MM UTC"`` while a timer is set, else ``""``."""
    timer = read_timer(root)
    if timer is None:
        return ""
    at = datetime.fromisoformat(timer["at"])
    return (f"; stop scheduled at {at:%Y-%m-%d %H:%M} UTC"
            + (f" ({timer['profile']})" if timer.get("profile") else ""))


def stop(root: Path, profile: str | None, profiles: list[str], minutes: float | None) -> int:
    """``campaign stop``: stop ``profiles``' sweeps now (``minutes`` None; 1 if one is still
    running after the wait), or schedule the stop of ``profile`` (None: every pinned one).
    The timer's own stop, when it fires, removes ``STOP.json``."""
    if minutes is None:
        timer = read_timer(root)
        if timer is not None and int(timer["pid"]) == os.getpid():  # the timer firing
            (root / TIMER).unlink(missing_ok=True)
        return 0 if stop_profiles(root, profiles) else 1
    at = schedule_stop(root, profile, minutes)["at"]
    print(f"campaign: {profile or 'every pinned profile'}: stop scheduled at {at} UTC "
          "(`python -m reproduce.campaign status` shows it)")
    return 0
