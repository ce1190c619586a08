"""A campaign profile's pin, sweep pid, drain target and settings under the campaign root
(``<root>/<profile>/PIN.json``, ``sweep.pid``, ``DRAIN.json``, ``SETTINGS.json``): read,
written and checked here for :mod:`reproduce.campaign` and :mod:`reproduce.campaign_drain`."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from qprop_tf.rundir import DONE, proc_stat
from reproduce.results import stopped_nonfinite
from reproduce.spec import REPO_ROOT, RunSpec

PIN = "PIN.json"
PID = "sweep.pid"
DRAIN = "DRAIN.json"
SETTINGS = "SETTINGS.json"
DEFAULT_WORKERS = 2
MAX_NICE = 19


class CampaignError(RuntimeError):
    """A campaign command that cannot go on (one line for the user)."""


def git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise CampaignError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


LEGACY_PROFILE = "table1"
"""Owner of the one-profile layout's pin and pid."""


def migrate_legacy(root: Path) -> None:
    """Move the one-profile layout's ``<root>/PIN.json`` and ``<root>/sweep.pid`` to table1's
    place (``<root>/table1/``), each unless table1 already has its own. The sweep does not
    read them, so a sweep running from the old layout goes on, and its pid is found at the
    new place."""
    for name in (PIN, PID):
        old, new = root / name, root / LEGACY_PROFILE / name
        if old.is_file() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            old.replace(new)


def read_pin(root: Path, profile: str) -> dict[str, str] | None:
    try:
        return json.loads((root / profile / PIN).read_text())
    except FileNotFoundError:
        return None


def unfinished(specs: list[RunSpec], root: Path) -> list[str]:
    """Keys of the runs started in ``root`` and not finished. A run that stopped on a
    non-finite value is a result (never resumed), not unfinished."""
    return [s.key for s in specs
            if s.run_dir(root).is_dir() and not (s.run_dir(root) / DONE).is_file()
            and not stopped_nonfinite(s.run_dir(root))]


def run_commit(run_dir: Path) -> str | None:
    """The commit a run last ran at (its ``config.json``'s ``git_commit``, rewritten at every
    start and resume); None when it has none."""
    try:
        return json.loads((run_dir / "config.json").read_text()).get("git_commit")
    except (OSError, ValueError):
        return None


def pin_worktree(root: Path, profile: str, specs: list[RunSpec], repin: bool,
                 commit: str | None = None) -> Path:
    """The profile's pinned worktree, created (at ``commit``, default HEAD, or at its
    recorded commit) when missing; shared with every profile pinned at the same commit."""
    pin = read_pin(root, profile)
    head = commit or git("rev-parse", "HEAD")
    if pin is not None and repin and pin["commit"] != head:
        # runs a drain started at the target already run at the commit the pin moves to
        open_runs = set(unfinished(specs, root))
        left = [s.key for s in specs
                if s.key in open_runs and run_commit(s.run_dir(root)) != head]
        if left:
            raise CampaignError(f"cannot repin {profile}: {len(left)} unfinished run(s) would "
                                f"resume under another commit ({', '.join(left[:4])}...); "
                                "let them finish")
        pin = None
    if pin is None:
        pin = {"commit": head, "worktree": str(worktree_path(root, head)),
               "pinned": datetime.now(UTC).isoformat(timespec="seconds")}
    wt = worktree_at(root, pin["commit"], Path(pin["worktree"]))
    (root / profile).mkdir(parents=True, exist_ok=True)
    (root / profile / PIN).write_text(json.dumps(pin, indent=1) + "\n")
    return wt


def worktree_path(root: Path, commit: str) -> Path:
    """Where the campaign keeps ``commit``'s worktree: ``<root>/wt-<sha7>``."""
    return root / f"wt-{commit[:7]}"


def worktree_at(root: Path, commit: str, wt: Path | None = None) -> Path:
    """The detached worktree of ``commit`` (default :func:`worktree_path`), created when
    missing; no pin changes."""
    wt = wt or worktree_path(root, commit)
    if not wt.is_dir():
        git("worktree", "prune")
        git("worktree", "add", "--detach", str(wt), commit)
    return wt


def running_pid(root: Path, profile: str) -> int | None:
    """The pid of the profile's background sweep, if it is alive. A zombie is not: a sweep
    that has exited but that its parent (init, for a detached sweep) has not reaped yet read
    as running for some seconds after a stop, and ``start`` skipped its profile."""
    try:
        pid = int((root / profile / PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    stat = proc_stat(pid)
    return None if stat is not None and stat[0] == "Z" else pid


def read_drain(root: Path, profile: str) -> dict[str, str] | None:
    try:
        return json.loads((root / profile / DRAIN).read_text())
    except FileNotFoundError:
        return None


def detach(cmd: list[str], cwd: Path, root: Path, name: str, nice: int = 0
           ) -> tuple[int, Path]:
    """Start ``cmd`` in ``cwd`` in a session of its own, at ``nice`` as a group
    (:func:`autogroup_prefix`), its output in
    ``<root>/logs/campaign_<name>_<UTC time>.out``; (its pid, its log)."""
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"campaign_{name}_{datetime.now(UTC):%Y%m%d-%H%M%S}.out"
    with open(log, "w") as f:
        proc = subprocess.Popen([*autogroup_prefix(nice), *cmd], cwd=cwd, stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return proc.pid, log


def latest_log(root: Path, profile: str) -> Path | None:
    """The newest of ``profile``'s logs that :func:`detach` wrote."""
    logs = sorted((root / "logs").glob(f"campaign_{profile}_*.out"))
    return logs[-1] if logs else None


AUTOGROUP = Path("/proc/self/autogroup")


def autogroup_nice(pid: int) -> int | None:
    """The niceness of ``pid``'s autogroup (``/proc/<pid>/autogroup``: ``/autogroup-58 nice
    15``); None without autogroups or without that process."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def autogroup_prefix(nice: int) -> list[str]:
    """The command prefix that gives a new session's autogroup the niceness ``nice``.

    With Linux's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, on here)
    every session is a scheduling group, and the CPU is shared between groups first: a
    process's own niceness only weighs it against its group's other processes. Each sweep is
    detached into a session of its own, so at nice 15 it still got a whole group's share
    (measured: two sweeps at nice 15 had 68% of a core each, the nice-0 sweep's two runs 32%
    each). The shell writes ``nice`` into ``/proc/self/autogroup`` (man 7 sched), then execs
    the command, which keeps the group. Nothing without autogroups."""
    if nice <= 0 or not AUTOGROUP.exists():
        return []
    return ["sh", "-c", '{ echo "$0" > /proc/self/autogroup; } 2>/dev/null; exec "$@"',
            str(nice)]


def read_settings(root: Path, profile: str) -> dict[str, int]:
    """The profile's recorded ``nice`` and ``workers`` (``{}`` if none were set)."""
    try:
        return {k: int(v) for k, v in json.loads((root / profile / SETTINGS).read_text()).items()}
    except FileNotFoundError:
        return {}


def write_settings(root: Path, profile: str, nice: int | None = None,
                   workers: int | None = None) -> dict[str, int]:
    """Record the profile's niceness and workers per sweep (None keeps what was recorded)."""
    if nice is not None and not 0 <= nice <= MAX_NICE:
        raise CampaignError(f"--nice must be 0..{MAX_NICE}, not {nice}")
    if workers is not None and workers < 1:
        raise CampaignError(f"--workers must be >= 1, not {workers}")
    settings = read_settings(root, profile)
    settings.update({k: v for k, v in (("nice", nice), ("workers", workers)) if v is not None})
    (root / profile).mkdir(parents=True, exist_ok=True)
    (root / profile / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
    return settings


COMMITTED = "CAMPAIGN.json"
"""``results/<profile>/CAMPAIGN.json``, beside the committed ledger: what a fresh machine's
``start`` needs of a campaign whose root is gone: its settings, how many runs it has left
and its commit (written by ``collect``)."""


def write_committed(results: Path, profile: str, settings: dict[str, int], runs_left: int,
                    commit: str | None) -> Path:
    """Record the profile's campaign for a fresh machine: its sweeps' ``settings`` (``nice``,
    ``workers``), its ``runs_left`` (to go or unfinished) and the ``commit`` it was pinned at,
    where a fresh root pins it again (``campaign_park.fresh_pin_commit``)."""
    out = results / profile / COMMITTED
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": profile, **settings, "runs_left": runs_left,
                               "pinned_commit": commit}, indent=1) + "\n")
    return out


def read_committed(results: Path, profile: str) -> dict | None:
    try:
        return json.loads((results / profile / COMMITTED).read_text())
    except FileNotFoundError:
        return None


def open_campaigns(results: Path) -> list[str]:
    """The profiles whose committed campaign has runs left (:func:`write_committed`), sorted:
    where a fresh root's ``start`` takes the campaign up."""
    out = []
    for f in sorted(results.glob(f"*/{COMMITTED}")):
        state = read_committed(results, f.parent.name)
        if state and state.get("runs_left", 0) > 0:
            out.append(f.parent.name)
    return out


def seed_settings(root: Path, results: Path, profile: str) -> dict[str, int]:
    """The profile's settings in the root; where the root has none (a fresh machine), those
    of its committed campaign (:func:`write_committed`), first written into the root."""
    settings = read_settings(root, profile)
    state = read_committed(results, profile)
    if settings or not state:
        return settings
    return write_settings(root, profile, state.get("nice"), state.get("workers"))


def effective(settings: dict[str, int], workers: int | None, nice: int) -> tuple[int, int]:
    """(workers, nice) of a sweep started now: the command's workers if it gave them, else the
    profile's, else 2; the larger of the command's niceness (e.g. 10 while tests run) and the
    profile's, so that a command never raises a profile the campaign put behind others."""
    return (workers if workers is not None else settings.get("workers", DEFAULT_WORKERS),
            max(nice, settings.get("nice", 0)))


def nice_prefix(nice: int) -> list[str]:
    """The command prefix that runs a child at niceness ``nice`` (absolute, 0..19): ``nice -n``
    adds to the caller's own, so a start from an already niced process (a drain, ``nice make
    campaign``) would otherwise stack the two. A caller niced beyond ``nice`` stays where it
    is (raising priority back needs privileges)."""
    step = nice - os.nice(0)
    return ["nice", "-n", str(step)] if step > 0 else []


def _cwds() -> list[Path]:
    """The working directories of the live processes this user can see (Linux ``/proc``)."""
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            out.append(Path(os.readlink(proc / "cwd")).resolve())
        except OSError:
            continue
    return out


def prunable(root: Path) -> list[Path]:
    """The campaign root's ``wt-*`` worktrees no profile pins (``PIN.json``) or drains to
    (``DRAIN.json``) and no live process works in (a sweep runs from its worktree, a
    draining one from its old pin's): left behind by repins, safe to remove."""
    pinned = set()
    for pin_file in root.glob(f"*/{PIN}"):
        pin = read_pin(root, pin_file.parent.name)
        if pin and pin.get("worktree"):
            pinned.add(Path(pin["worktree"]).resolve())
        drain = read_drain(root, pin_file.parent.name)
        if drain and drain.get("target"):  # a drain's lanes start new runs there
            pinned.add(worktree_path(root, drain["target"]).resolve())
    busy = _cwds()
    out = []
    for wt in sorted(p for p in root.glob("wt-*") if p.is_dir()):
        real = wt.resolve()
        if real in pinned or any(c == real or real in c.parents for c in busy):
            continue
        out.append(wt)
    return out


def prune(root: Path, dry_run: bool = False) -> list[Path]:
    """Remove the :func:`prunable` worktrees (``git worktree remove``, which refuses one with
    local changes: that error stops the prune); returns them."""
    found = prunable(root)
    if not dry_run:
        for wt in found:
            git("worktree", "remove", str(wt))
    return found
