"""Long sweeps that survive interruptions: pinned code, a results root outside the checkout.

One campaign root (default ``/var/tmp/qprop-campaign``) holds several profiles' campaigns at
once (``table1``, ``stable``, ``bestbatch``...), each in ``<root>/<profile>/``: its runs
(``runs/``), its pin (``PIN.json``) and its background sweep's pid (``sweep.pid``).

``make campaign`` = ``python -m reproduce.campaign start``: (re)starts, in the background and
where it stood, every profile pinned under the root, skipping those whose sweep is still
running; on a root with no pin (a fresh machine), every profile whose committed
``<results>/<profile>/CAMPAIGN.json`` (written by ``collect``) has runs left, with its
``set`` settings, else ``table1``. ``--profile X`` starts X alone.

- Each profile's code is a git worktree ``<root>/wt-<sha7>`` pinned at one commit (profiles
  pinned at the same commit share it), outside the checkout, so that what lands on main
  meanwhile never touches a run in flight, and a run never resumes under another commit.
  ``start --repin`` moves a profile's pin to HEAD, and refuses while any of its runs is
  unfinished (finish them first, or they would mix commits).
- Runs live under the root, with their checkpoints, so a restart on the same machine resumes
  them; a fresh machine pins the committed campaign's commit and starts them from zero, but
  for those whose small checkpoint ``collect`` parked (``reproduce.campaign_park``).
- The committed finished runs of the profile are copied into the root first, so the sweep
  skips them; so are identical finished runs of the root's other profiles, linked
  (``reproduce.reuse``: same ``RunSpec.identity()``), so no profile trains a run another has
  finished; the sweep then trains the rest, seed 0 of every cell first (``sweep.plan``).

``python -m reproduce.campaign collect`` (``make campaign-collect``), per profile: copies the
finished runs into the checkout's results tree, without checkpoints; copies the
``progress.csv`` so far of unfinished runs under ``<results>/<profile>/inflight/`` (never read
by the table); writes the ledger ``<results>/<profile>/CAMPAIGN.md`` (``reproduce.ledger``)
and ``CAMPAIGN.json``. The Makefile target then regenerates each profile's table and figures.

``python -m reproduce.campaign status``: per profile, the ledger on stdout and whether its
sweep is running. ``python -m reproduce.campaign profiles``: the profiles a command without
``--profile`` acts on, one a line (for the Makefile). ``python -m reproduce.campaign pin
--profile P [--repin]``: pin P (or move its pin to HEAD) without starting it, so that the next
``start`` (every pinned profile) takes it up.

``python -m reproduce.campaign set --profile P [--nice N] [--workers K]`` records P's
priority (``<root>/<profile>/SETTINGS.json``): every later ``start`` launches P's sweeps (its
drain's too) at niceness >= N with K workers, so one ``make campaign`` restores the shares
the campaign chose (e.g. the long Table 1 sweep behind an issue's short profile). A
command's ``--workers`` overrides K; its ``--nice`` can only raise N.

``python -m reproduce.campaign stop [--profile P] [--in MINUTES]``, ``start --stop-in
MINUTES``: stop sweeps, their runs checkpointed, now or later (``reproduce.campaign_stop``).

``python -m reproduce.campaign rehome --profile P [--dry-run]`` moves the finished runs in
P's places that are another profile's spec to that profile (``reproduce.campaign_rehome``).

``python -m reproduce.campaign drain --profile P`` moves P's pin to HEAD without mixing
commits and without losing a run: with unfinished runs it records the target and those runs
(``<root>/<profile>/DRAIN.json``), and the next ``start`` resumes just those runs at the old
pin (one sweep each, in ``workers`` lanes, ``drain.sh``, its pid in ``sweep.pid``: stop it
with ``campaign stop``); a lane whose drained runs are done sweeps the profile at the
target with one worker, the drained runs excluded, so no core waits for the slowest drained
run. Then it repins (runs started at the target are no obstacle) and starts the profile at
the target. A drained run that fails stops its lane and the repin (it is kept, and named in
the log).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.campaign_collect import collect_profile
from reproduce.campaign_drain import knows_exclude, launch_drain
from reproduce.campaign_losses import pending_losses
from reproduce.campaign_park import fresh_pin_commit, restore_parked, seed_root
from reproduce.campaign_pins import (
    DRAIN,
    LEGACY_PROFILE,
    PID,
    PIN,
    CampaignError,
    detach,
    effective,
    git,
    latest_log,
    migrate_legacy,
    nice_prefix,
    open_campaigns,
    pin_worktree,
    prune,
    read_drain,
    read_pin,
    running_pid,
    seed_settings,
    unfinished,
    worktree_at,
    write_settings,
)
from reproduce.campaign_rehome import rehome
from reproduce.campaign_status import status_profile
from reproduce.campaign_stop import check_minutes, stop
from reproduce.results import stopped_nonfinite
from reproduce.reuse import reuse_all
from reproduce.spec import (
    REPO_ROOT,
    SpecError,
    check_profile,
    resolve_runs,
    selection_choices,
)

DEFAULT_ROOT = Path("/var/tmp/qprop-campaign")
DEFAULT_PROFILE = LEGACY_PROFILE
"""Started when nothing is pinned yet and no committed campaign has runs left."""


def pinned(root: Path) -> list[str]:
    """The profiles with a pin under ``root``, sorted."""
    migrate_legacy(root)
    return sorted(p.parent.name for p in root.glob(f"*/{PIN}") if p.is_file())


def selected(root: Path, profile: str | None, results: Path | None = None) -> list[str]:
    """The profiles a command acts on: ``profile`` if given (it must exist), else every pinned
    one, else (a fresh root) every one whose committed campaign under ``results`` has runs
    left (``campaign_pins.open_campaigns``), else table1."""
    if profile is not None:
        migrate_legacy(root)
        check_profile(profile)
        return [profile]
    return (pinned(root) or (open_campaigns(results) if results is not None else [])
            or [DEFAULT_PROFILE])


def sync_selection(profile: str, results: Path, root: Path) -> Path | None:
    """A profile whose algorithms come from a selection file (``algos_from``, e.g.
    bestbatch-confirm) reads it under ``--results``: the sweep under the root, this module
    under the checkout. Copy the checkout's into the root when the root has none, or when
    it keeps every choice of the root's and adds domains (a selection made one domain at a
    time); refuse when it changes a choice (the root's runs were chosen by the root's)."""
    rel = check_profile(profile).get("algos_from")
    if not rel:
        return None
    src, dst = results / rel, root / rel
    if not src.is_file():
        raise CampaignError(f"{profile}: its selection file {src} does not exist yet")
    if dst.is_file() and dst.read_bytes() != src.read_bytes():
        old, new = selection_choices(dst), selection_choices(src)
        changed = sorted(d for d in old if new.get(d) != old[d])
        if changed:
            raise CampaignError(f"{profile}: {src} chooses otherwise than {dst} for "
                                f"{', '.join(changed)}; the campaign's runs were chosen by "
                                "the latter: make them agree before going on")
        print(f"campaign: {profile}: selection grows to {', '.join(sorted(new))} "
              f"(was {', '.join(sorted(old)) or 'none'})")
    if not dst.is_file() or dst.read_bytes() != src.read_bytes():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return dst


def launch(profile: str, wt: Path, root: Path, workers: int, nice: int) -> tuple[int, Path]:
    """Start the profile's sweep from the worktree, detached; (its pid, its log)."""
    cmd = [sys.executable, "-m", "reproduce.sweep", "--profile", profile, "--results", str(root),
           "--workers", str(workers)]
    return detach([*nice_prefix(nice), *cmd], wt, root, profile, nice)


def _pin_line(root: Path, profile: str) -> str:
    pin = read_pin(root, profile)
    return f"{pin['commit'][:7]} ({pin['worktree']})" if pin else "not pinned"


def start_profile(profile: str, root: Path, results: Path, workers: int | None, nice: int,
                  repin: bool) -> None:
    specs = resolve_runs(profile, results=results)
    workers, nice = effective(seed_settings(root, results, profile), workers, nice)
    pid = running_pid(root, profile)
    if pid is not None and pid != os.getpid():  # its own: a drain's script exec'd into it
        print(f"campaign: {profile}: already running, skipped\n"
              f"  commit: {_pin_line(root, profile)}\n  pid:    {pid}\n"
              f"  log:    {latest_log(root, profile) or '?'}")
        return
    drain = read_drain(root, profile)
    if drain is not None:
        # the runs unfinished when the drain began (not those started at the target since)
        drained = drain.get("unfinished")
        left = [k for k in unfinished(specs, root) if drained is None or k in drained]
        if left:
            wt = pin_worktree(root, profile, specs, repin=False)
            target_wt = worktree_at(root, drain["target"])
            new_runs = knows_exclude(target_wt)
            pid, log = launch_drain(profile, wt, root, results,
                                    [s for s in specs if s.key in left], workers, nice,
                                    target_wt)
            (root / profile / PID).write_text(f"{pid}\n")
            print(f"campaign: {profile}: draining to {drain['target'][:7]}: resuming its "
                  f"{len(left)} unfinished run(s) at {_pin_line(root, profile)}, "
                  + (f"and new ones at {drain['target'][:7]} on the cores they free"
                     if new_runs else "no new one")
                  + f"; then it repins and goes on\n  pid:    {pid} (stop: make campaign-stop)"
                  f"\n  log:    {log}")
            return
        pin_worktree(root, profile, specs, repin=True, commit=drain["target"])
        (root / profile / DRAIN).unlink()
        print(f"campaign: {profile}: drained; pinned at {_pin_line(root, profile)}")
    sync_selection(profile, results, root)
    linked = reuse_all(root, profile)
    finished = [s for s in specs if any((s.run_dir(r) / DONE).is_file() for r in (root, results))
                or stopped_nonfinite(s.run_dir(root))]  # a result, never rerun
    if specs and len(finished) == len(specs):
        print(f"campaign: {profile}: complete, all {len(specs)} runs done; nothing to start")
        return
    fresh = read_pin(root, profile) is None  # a new machine: its campaign's commit, if any
    wt = pin_worktree(root, profile, specs, repin,
                      commit=fresh_pin_commit(results, profile) if fresh else None)
    copied = seed_root(specs, results, root)
    restored = (restore_parked(profile, specs, root, results, read_pin(root, profile)["commit"])
                if fresh else [])
    for x in pending_losses(profile, specs, root, results):
        print(f"campaign: {profile}: WARNING: {x.domain} {x.algo} seed {x.seed} {x.cause}: "
              f"{x.lost_cpu_hours:.2f} CPU-h of its committed progress is lost (`make "
              "campaign-collect` records it in LOST.csv)")
    pid, log = launch(profile, wt, root, workers, nice)
    (root / profile / PID).write_text(f"{pid}\n")
    print(f"campaign: {profile}: started, {workers} worker(s)"
          + (f", nice {nice}" if nice else "") + f"; {copied} committed run(s) copied in"
          + (f"; {len(linked)} linked to identical finished runs of other profiles"
             if linked else "")
          + (f"; {len(restored)} restored from their parked checkpoints ({', '.join(restored)})"
             if restored else "") + "\n"
          f"  commit: {_pin_line(root, profile)}\n  pid:    {pid} (stop: make campaign-stop; "
          f"runs checkpoint and resume next time)\n  log:    {log}")


def pin_profile(profile: str, root: Path, repin: bool) -> None:
    """Pin ``profile`` (at HEAD, or keep its pin unless ``repin``) without starting it."""
    if running_pid(root, profile) is not None and repin:
        raise CampaignError(f"{profile}: its sweep is running; stop it before repinning")
    pin_worktree(root, profile, resolve_runs(profile), repin)
    print(f"campaign: {profile}: pinned at {_pin_line(root, profile)}; `start` takes it up")


def drain_profile(profile: str, root: Path) -> None:
    """Move the pin to HEAD without mixing commits: with no unfinished run, at once; else
    record the target and the unfinished runs (``DRAIN.json``), so that ``start`` resumes
    those at the old pin, starts new runs at the target on the cores they free
    (:mod:`reproduce.campaign_drain`), and then repins and goes on."""
    pid = running_pid(root, profile)
    if pid is not None:
        raise CampaignError(f"{profile}: its sweep is running (pid {pid}); stop it first "
                            "(`make campaign-stop`: its runs checkpoint, and the drain "
                            "resumes them)")
    pin = read_pin(root, profile)
    head = git("rev-parse", "HEAD")
    if pin is None or pin["commit"] == head:
        pin_profile(profile, root, repin=False)
        return
    specs = resolve_runs(profile)
    left = unfinished(specs, root)
    if not left:
        pin_profile(profile, root, repin=True)
        return
    (root / profile / DRAIN).write_text(json.dumps(
        {"target": head, "since": datetime.now(UTC).isoformat(timespec="seconds"),
         "unfinished": left}, indent=1) + "\n")
    print(f"campaign: {profile}: draining to {head[:7]}: the next `start` resumes its "
          f"{len(left)} unfinished run(s) at {pin['commit'][:7]}, and starts new ones at "
          f"{head[:7]} on the cores they free; then it repins and goes on")


def _each(profiles: list[str], act: Callable[[str], None]) -> int:
    """``act`` on every profile; one's error (one line on stderr) does not stop the others."""
    failed = 0
    for profile in profiles:
        try:
            act(profile)
        except (CampaignError, SpecError) as exc:
            print(f"campaign: {profile}: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def start(profile: str | None, root: Path, results: Path, workers: int | None, nice: int,
          repin: bool) -> int:
    """Start ``profile``, or every pinned profile (table1 if none), skipping running ones."""
    root.mkdir(parents=True, exist_ok=True)
    return _each(selected(root, profile, results),
                 lambda p: start_profile(p, root, results, workers, nice, repin))


def collect(profile: str | None, root: Path, results: Path) -> int:
    return _each(selected(root, profile, results),
                 lambda p: collect_profile(p, root, results))


def status(profile: str | None, root: Path, results: Path, short: bool = False) -> int:
    return _each(selected(root, profile, results),
                 lambda p: status_profile(p, root, results, short))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command",
                        choices=("start", "pin", "drain", "set", "collect", "status",
                                 "profiles", "prune", "rehome", "stop"))
    parser.add_argument("--profile", default=None,
                        help="one profile (default: every profile pinned under the root, or "
                        f"{DEFAULT_PROFILE} if none is)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help=f"where the runs live (default {DEFAULT_ROOT})")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="the checkout's results tree")
    parser.add_argument("--workers", type=int, default=None,
                        help="per sweep started (default: the profile's, see `set`, else 2); "
                        "with `set`: record it for the profile")
    parser.add_argument("--nice", type=int, default=None,
                        help="niceness of each sweep started, e.g. 10 while tests run (a "
                        "profile's own, see `set`, is the floor); with `set`: record it")
    parser.add_argument("--brief", action="store_true",
                        help="status: two lines per profile (sweep, pin, priority; totals)")
    parser.add_argument("--repin", action="store_true",
                        help="move the pin to HEAD (refused while runs are unfinished)")
    parser.add_argument("--dry-run", action="store_true",
                        help="prune, rehome: only list what it would remove or move")
    parser.add_argument("--in", dest="stop_in", type=float, default=None, metavar="MINUTES",
                        help="stop: schedule it this many minutes from now")
    parser.add_argument("--stop-in", type=float, default=None, metavar="MINUTES",
                        help="start: and schedule a stop this many minutes from now")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        if args.command == "start":
            if args.stop_in is not None:
                check_minutes(args.stop_in)  # before anything starts
            code = start(args.profile, args.root, args.results, args.workers, args.nice or 0,
                         args.repin)
            if args.stop_in is None:
                return code
            return stop(args.root, args.profile, [], args.stop_in) or code
        if args.command == "set":
            if not args.profile:
                raise CampaignError("set needs --profile")
            check_profile(args.profile)
            settings = write_settings(args.root, args.profile, args.nice, args.workers)
            print(f"campaign: {args.profile}: its sweeps start with "
                  + (", ".join(f"{k} {v}" for k, v in sorted(settings.items())) or "defaults")
                  + " (the next `start`; a running sweep keeps its own)")
            return 0
        if args.command == "pin":
            if not args.profile:
                raise CampaignError("pin needs --profile")
            args.root.mkdir(parents=True, exist_ok=True)
            migrate_legacy(args.root)
            pin_profile(args.profile, args.root, args.repin)
            return 0
        if args.command == "drain":
            if not args.profile:
                raise CampaignError("drain needs --profile")
            drain_profile(args.profile, args.root)
            return 0
        if not args.root.is_dir():
            raise CampaignError(f"no campaign root at {args.root}")
        if args.command == "profiles":
            print("\n".join(selected(args.root, args.profile, args.results)))
            return 0
        if args.command == "prune":
            gone = prune(args.root, args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            print(f"campaign: {verb} {len(gone)} worktree(s) no profile pins and no process "
                  f"uses{': ' if gone else ''}{', '.join(p.name for p in gone)}")
            return 0
        if args.command == "rehome":
            if not args.profile:
                raise CampaignError("rehome needs --profile")
            moves, left = rehome(args.profile, [args.root, args.results], args.dry_run)
            verb = "would move" if args.dry_run else "moved"
            print(f"campaign: {args.profile}: {verb} {len(moves)} run(s) of another spec to "
                  "the profile whose spec it is" + "".join(f"\n  {a} -> {b}" for a, b in moves)
                  + "".join(f"\n  left: {x}" for x in left))
            return 0
        if args.command == "collect":
            return collect(args.profile, args.root, args.results)
        if args.command == "stop":
            return stop(args.root, args.profile, selected(args.root, args.profile),
                        args.stop_in)
        return status(args.profile, args.root, args.results, args.brief)
    except (CampaignError, SpecError) as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
