"""A long sweep that survives interruptions: pinned code, a results root outside the checkout.

``make campaign`` = ``python -m reproduce.campaign start``: (re)starts the campaign where it
stood, in the background, and returns.

- The code is a git worktree pinned at one commit (``<root>/PIN.json``), outside the checkout,
  so that what lands on main meanwhile never touches a run in flight, and a run never resumes
  under another commit. The first ``start`` pins HEAD; ``start --repin`` moves the pin to HEAD,
  and refuses while any run is unfinished (finish them first, or they would mix commits).
- Runs live under ``<root>`` (default ``/var/tmp/qprop-campaign``), with their checkpoints, so
  a restart on the same machine resumes them; a fresh machine starts them from zero.
- The committed finished runs of the profile are copied into the root first, so the sweep
  skips them; the sweep then trains the rest, seed 0 of every cell first (``sweep.plan``).

``python -m reproduce.campaign collect`` (``make campaign-collect``): copies the finished runs
into the checkout's results tree, without checkpoints; copies the ``progress.csv`` so far of
unfinished runs under ``<results>/<profile>/inflight/`` (never read by the table); writes the
ledger (``reproduce.ledger``). The Makefile target then regenerates the table and figures.

``python -m reproduce.campaign status``: the ledger on stdout, and whether a sweep is running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from qprop_tf.rundir import DONE, LOCK
from reproduce.ledger import ledger, render
from reproduce.spec import REPO_ROOT, RunSpec, SpecError, resolve_runs

DEFAULT_ROOT = Path("/var/tmp/qprop-campaign")
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


def read_pin(root: Path) -> dict[str, str] | None:
    try:
        return json.loads((root / PIN).read_text())
    except FileNotFoundError:
        return None


def unfinished(specs: list[RunSpec], root: Path) -> list[str]:
    """Keys of the runs started in ``root`` and not finished."""
    return [s.key for s in specs
            if s.run_dir(root).is_dir() and not (s.run_dir(root) / DONE).is_file()]


def pin_worktree(root: Path, specs: list[RunSpec], repin: bool) -> Path:
    """The pinned worktree, created (at HEAD, or at the recorded commit) when missing."""
    pin = read_pin(root)
    head = _git("rev-parse", "HEAD")
    if pin is not None and repin and pin["commit"] != head:
        left = unfinished(specs, root)
        if left:
            raise CampaignError(f"cannot repin: {len(left)} unfinished run(s) would resume under "
                                f"another commit ({', '.join(left[:4])}...); let them finish")
        pin = None
    if pin is None:
        pin = {"commit": head, "worktree": str(root / f"wt-{head[:7]}"),
               "pinned": datetime.now(UTC).isoformat(timespec="seconds")}
    wt = Path(pin["worktree"])
    if not wt.is_dir():
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", str(wt), pin["commit"])
    (root / PIN).write_text(json.dumps(pin, indent=1) + "\n")
    return wt


def running_pid(root: Path) -> int | None:
    """The pid of this root's background sweep, if it is alive."""
    try:
        pid = int((root / PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def seed_root(specs: list[RunSpec], results: Path, root: Path) -> int:
    """Copy the committed finished runs into the root (where it has none), so they are skipped."""
    n = 0
    for s in specs:
        src, dst = s.run_dir(results), s.run_dir(root)
        if (src / DONE).is_file() and not dst.exists():
            shutil.copytree(src, dst)
            n += 1
    return n


def start(profile: str, root: Path, results: Path, workers: int, nice: int,
          repin: bool) -> int:
    specs = resolve_runs(profile)
    root.mkdir(parents=True, exist_ok=True)
    pid = running_pid(root)
    if pid is not None:
        print(f"campaign: already running (pid {pid}); log in {root / 'logs'}")
        return 0
    wt = pin_worktree(root, specs, repin)
    copied = seed_root(specs, results, root)
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
    (root / PID).write_text(f"{proc.pid}\n")
    print(f"campaign: profile {profile}, code pinned at {read_pin(root)['commit'][:7]} ({wt}); "
          f"{copied} committed run(s) copied in; sweep pid {proc.pid}, {workers} worker(s)\n"
          f"  log: {log}\n  stop: kill -TERM {proc.pid} (runs checkpoint and resume next time)")
    return 0


def copy_run(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*SKIP))


def collect(profile: str, root: Path, results: Path) -> int:
    specs = resolve_runs(profile)
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
    (results / "CAMPAIGN.md").write_text(text)
    print(f"campaign: {new} finished run(s) copied into {results}; {partial} unfinished "
          f"progress file(s) under {inflight}; ledger in {results / 'CAMPAIGN.md'}")
    return 0


def status(profile: str, root: Path, results: Path) -> int:
    specs = resolve_runs(profile)
    pid = running_pid(root)
    pin = read_pin(root)
    print(f"campaign root {root}: " + (f"sweep running (pid {pid})" if pid else "no sweep")
          + (f", pinned at {pin['commit'][:7]}" if pin else ", not pinned yet"))
    roots = [r for r in (root, results) if r.is_dir()]
    print(render(profile, ledger(specs, roots), roots,
                 f"python -m reproduce.campaign status --profile {profile}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("start", "collect", "status"))
    parser.add_argument("--profile", default="table1")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help=f"where the runs live (default {DEFAULT_ROOT})")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                        help="the checkout's results tree")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nice", type=int, default=0, help="niceness of the sweep (e.g. 10 "
                        "while tests run)")
    parser.add_argument("--repin", action="store_true",
                        help="move the pin to HEAD (refused while runs are unfinished)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        if args.command == "start":
            return start(args.profile, args.root, args.results, args.workers, args.nice,
                         args.repin)
        if not args.root.is_dir():
            raise CampaignError(f"no campaign root at {args.root}")
        if args.command == "collect":
            return collect(args.profile, args.root, args.results)
        return status(args.profile, args.root, args.results)
    except (CampaignError, SpecError) as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
