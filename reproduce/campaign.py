"""Long sweeps that survive interruptions: pinned code, a results root outside the checkout.

One campaign root (default ``/var/tmp/qprop-campaign``) holds several profiles' campaigns at
once (``table1``, ``stable``, ``bestbatch``...), each in ``<root>/<profile>/``: its runs
(``runs/``), its pin (``PIN.json``) and its background sweep's pid (``sweep.pid``).

``make campaign`` = ``python -m reproduce.campaign start``: (re)starts, in the background and
where it stood, every profile pinned under the root (``table1`` when none is yet), skipping
those whose sweep is still running; ``--profile X`` starts X alone (pinning HEAD if X has no
pin yet).

- Each profile's code is a git worktree ``<root>/wt-<sha7>`` pinned at one commit (profiles
  pinned at the same commit share it), outside the checkout, so that what lands on main
  meanwhile never touches a run in flight, and a run never resumes under another commit.
  ``start --repin`` moves a profile's pin to HEAD, and refuses while any of its runs is
  unfinished (finish them first, or they would mix commits).
- Runs live under the root, with their checkpoints, so a restart on the same machine resumes
  them; a fresh machine starts them from zero.
- The committed finished runs of the profile are copied into the root first, so the sweep
  skips them; the sweep then trains the rest, seed 0 of every cell first (``sweep.plan``).
- The one-profile layout's ``<root>/PIN.json`` and ``<root>/sweep.pid`` are table1's: any
  command moves them into ``<root>/table1/`` (a sweep running from them stays recognised).

``python -m reproduce.campaign collect`` (``make campaign-collect``), per profile: copies the
finished runs into the checkout's results tree, without checkpoints; copies the
``progress.csv`` so far of unfinished runs under ``<results>/<profile>/inflight/`` (never read
by the table); writes the ledger ``<results>/<profile>/CAMPAIGN.md`` (``reproduce.ledger``).
The Makefile target then regenerates each profile's table and figures.

``python -m reproduce.campaign status``: per profile, the ledger on stdout and whether its
sweep is running. ``python -m reproduce.campaign profiles``: the profiles a command without
``--profile`` acts on, one a line (for the Makefile). ``python -m reproduce.campaign pin
--profile P [--repin]``: pin P (or move its pin to HEAD) without starting it, so that the next
``start`` (every pinned profile) takes it up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from qprop_tf.rundir import DONE, LOCK
from reproduce.ledger import ledger, ledger_path, render
from reproduce.spec import REPO_ROOT, RunSpec, SpecError, check_profile, resolve_runs

DEFAULT_ROOT = Path("/var/tmp/qprop-campaign")
DEFAULT_PROFILE = "table1"
"""Started when nothing is pinned yet; owner of the one-profile layout's pin and pid."""
PIN = "PIN.json"
PID = "sweep.pid"
SKIP = ("checkpoint", LOCK)
"""Left behind when a run is copied into the committed results."""


class CampaignError(RuntimeError):
    """A campaign command that cannot go on (one line for the user)."""


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise CampaignError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def migrate_legacy(root: Path) -> None:
    """Move the one-profile layout's ``<root>/PIN.json`` and ``<root>/sweep.pid`` to table1's
    place, each unless table1 already has its own. The sweep does not read them, so a sweep
    running from the old layout goes on, and its pid is found at the new place."""
    for name in (PIN, PID):
        old, new = root / name, root / DEFAULT_PROFILE / name
        if old.is_file() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            old.replace(new)


def pinned(root: Path) -> list[str]:
    """The profiles with a pin under ``root``, sorted."""
    migrate_legacy(root)
    return sorted(p.parent.name for p in root.glob(f"*/{PIN}") if p.is_file())


def selected(root: Path, profile: str | None) -> list[str]:
    """The profiles a command acts on: ``profile`` if given (it must exist), else every pinned
    one, else table1."""
    if profile is not None:
        migrate_legacy(root)
        check_profile(profile)
        return [profile]
    return pinned(root) or [DEFAULT_PROFILE]


def read_pin(root: Path, profile: str) -> dict[str, str] | None:
    try:
        return json.loads((root / profile / PIN).read_text())
    except FileNotFoundError:
        return None


def unfinished(specs: list[RunSpec], root: Path) -> list[str]:
    """Keys of the runs started in ``root`` and not finished."""
    return [s.key for s in specs
            if s.run_dir(root).is_dir() and not (s.run_dir(root) / DONE).is_file()]


def pin_worktree(root: Path, profile: str, specs: list[RunSpec], repin: bool) -> Path:
    """The profile's pinned worktree, created (at HEAD, or at its recorded commit) when
    missing; shared with every profile pinned at the same commit."""
    pin = read_pin(root, profile)
    head = _git("rev-parse", "HEAD")
    if pin is not None and repin and pin["commit"] != head:
        left = unfinished(specs, root)
        if left:
            raise CampaignError(f"cannot repin {profile}: {len(left)} unfinished run(s) would "
                                f"resume under another commit ({', '.join(left[:4])}...); "
                                "let them finish")
        pin = None
    if pin is None:
        pin = {"commit": head, "worktree": str(root / f"wt-{head[:7]}"),
               "pinned": datetime.now(UTC).isoformat(timespec="seconds")}
    wt = Path(pin["worktree"])
    if not wt.is_dir():
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", str(wt), pin["commit"])
    (root / profile).mkdir(parents=True, exist_ok=True)
    (root / profile / PIN).write_text(json.dumps(pin, indent=1) + "\n")
    return wt


def running_pid(root: Path, profile: str) -> int | None:
    """The pid of the profile's background sweep, if it is alive."""
    try:
        pid = int((root / profile / PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def latest_log(root: Path, profile: str) -> Path | None:
    logs = sorted((root / "logs").glob(f"campaign_{profile}_*.out"))
    return logs[-1] if logs else None


def sync_selection(profile: str, results: Path, root: Path) -> Path | None:
    """A profile whose algorithms come from a selection file (``algos_from``, e.g.
    bestbatch-confirm) reads it under ``--results``: the sweep under the root, this module
    under the checkout. Copy the checkout's into the root when the root has none; refuse
    when the two differ (the root's runs were chosen by the root's file)."""
    rel = check_profile(profile).get("algos_from")
    if not rel:
        return None
    src, dst = results / rel, root / rel
    if not src.is_file():
        raise CampaignError(f"{profile}: its selection file {src} does not exist yet")
    if dst.is_file() and dst.read_bytes() != src.read_bytes():
        raise CampaignError(f"{profile}: {dst} differs from {src}; the campaign's runs were "
                            "chosen by the former: make them agree before going on")
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return dst


def seed_root(specs: list[RunSpec], results: Path, root: Path) -> int:
    """Copy the committed finished runs into the root (where it has none), so they are skipped."""
    n = 0
    for s in specs:
        src, dst = s.run_dir(results), s.run_dir(root)
        if (src / DONE).is_file() and not dst.exists():
            shutil.copytree(src, dst)
            n += 1
    return n


def launch(profile: str, wt: Path, root: Path, workers: int, nice: int) -> tuple[int, Path]:
    """Start the profile's sweep from the worktree, detached; (its pid, its log)."""
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"campaign_{profile}_{datetime.now(UTC):%Y%m%d-%H%M%S}.out"
    cmd = [sys.executable, "-m", "reproduce.sweep", "--profile", profile, "--results", str(root),
           "--workers", str(workers)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=wt, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid, log


def _pin_line(root: Path, profile: str) -> str:
    pin = read_pin(root, profile)
    return f"{pin['commit'][:7]} ({pin['worktree']})" if pin else "not pinned"


def start_profile(profile: str, root: Path, results: Path, workers: int, nice: int,
                  repin: bool) -> None:
    specs = resolve_runs(profile, results=results)
    pid = running_pid(root, profile)
    if pid is not None:
        print(f"campaign: {profile}: already running, skipped\n"
              f"  commit: {_pin_line(root, profile)}\n  pid:    {pid}\n"
              f"  log:    {latest_log(root, profile) or '?'}")
        return
    wt = pin_worktree(root, profile, specs, repin)
    sync_selection(profile, results, root)
    copied = seed_root(specs, results, root)
    pid, log = launch(profile, wt, root, workers, nice)
    (root / profile / PID).write_text(f"{pid}\n")
    print(f"campaign: {profile}: started, {workers} worker(s)"
          + (f", nice {nice}" if nice else "") + f"; {copied} committed run(s) copied in\n"
          f"  commit: {_pin_line(root, profile)}\n  pid:    {pid} (stop: kill -TERM {pid}; "
          f"runs checkpoint and resume next time)\n  log:    {log}")


def pin_profile(profile: str, root: Path, repin: bool) -> None:
    """Pin ``profile`` (at HEAD, or keep its pin unless ``repin``) without starting it."""
    if running_pid(root, profile) is not None and repin:
        raise CampaignError(f"{profile}: its sweep is running; stop it before repinning")
    pin_worktree(root, profile, resolve_runs(profile), repin)
    print(f"campaign: {profile}: pinned at {_pin_line(root, profile)}; `start` takes it up")


def copy_run(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*SKIP))


def collect_profile(profile: str, root: Path, results: Path) -> None:
    specs = resolve_runs(profile, results=results)
    inflight = results / profile / "inflight"
    new = partial = 0
    for s in specs:
        src, dst = s.run_dir(root), s.run_dir(results)
        parked = inflight / s.domain / s.algo / f"seed{s.seed}"
        if (src / DONE).is_file():
            if not (dst / DONE).is_file():
                copy_run(src, dst)
                new += 1
            shutil.rmtree(parked, ignore_errors=True)
        elif (src / "progress.csv").is_file():
            parked.mkdir(parents=True, exist_ok=True)
            for name in ("progress.csv", "spec.json", "config.json"):
                if (src / name).is_file():
                    shutil.copy2(src / name, parked / name)
            partial += 1
    runs = ledger(specs, [root, results])
    text = render(profile, runs, [root, results],
                  f"python -m reproduce.campaign collect --profile {profile}")
    out = ledger_path(results, profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"campaign: {profile}: {new} finished run(s) copied into {results}; {partial} "
          f"unfinished progress file(s) under {inflight}; ledger in {out}")


def status_profile(profile: str, root: Path, results: Path) -> None:
    specs = resolve_runs(profile, results=results)
    pid = running_pid(root, profile)
    pin = read_pin(root, profile)
    print(f"campaign root {root}, profile {profile}: "
          + (f"sweep running (pid {pid})" if pid else "no sweep")
          + (f", pinned at {pin['commit'][:7]}" if pin else ", not pinned yet"))
    roots = [r for r in (root, results) if r.is_dir()]
    print(render(profile, ledger(specs, roots), roots,
                 f"python -m reproduce.campaign status --profile {profile}"))


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


def start(profile: str | None, root: Path, results: Path, workers: int, nice: int,
          repin: bool) -> int:
    """Start ``profile``, or every pinned profile (table1 if none), skipping running ones."""
    root.mkdir(parents=True, exist_ok=True)
    return _each(selected(root, profile),
                 lambda p: start_profile(p, root, results, workers, nice, repin))


def collect(profile: str | None, root: Path, results: Path) -> int:
    return _each(selected(root, profile), lambda p: collect_profile(p, root, results))


def status(profile: str | None, root: Path, results: Path) -> int:
    return _each(selected(root, profile), lambda p: status_profile(p, root, results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("start", "pin", "collect", "status", "profiles"))
    parser.add_argument("--profile", default=None,
                        help="one profile (default: every profile pinned under the root, or "
                        f"{DEFAULT_PROFILE} if none is)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help=f"where the runs live (default {DEFAULT_ROOT})")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="the checkout's results tree")
    parser.add_argument("--workers", type=int, default=2, help="per sweep started")
    parser.add_argument("--nice", type=int, default=0, help="niceness of each sweep started "
                        "(e.g. 10 while tests run)")
    parser.add_argument("--repin", action="store_true",
                        help="move the pin to HEAD (refused while runs are unfinished)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        if args.command == "start":
            return start(args.profile, args.root, args.results, args.workers, args.nice,
                         args.repin)
        if args.command == "pin":
            if not args.profile:
                raise CampaignError("pin needs --profile")
            args.root.mkdir(parents=True, exist_ok=True)
            migrate_legacy(args.root)
            pin_profile(args.profile, args.root, args.repin)
            return 0
        if not args.root.is_dir():
            raise CampaignError(f"no campaign root at {args.root}")
        if args.command == "profiles":
            print("\n".join(selected(args.root, args.profile)))
            return 0
        if args.command == "collect":
            return collect(args.profile, args.root, args.results)
        return status(args.profile, args.root, args.results)
    except (CampaignError, SpecError) as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
