"""The drain's sweeps (``python -m reproduce.campaign drain``): the unfinished runs of a
profile resumed at its old pin, and new runs started at the target meanwhile, then ``campaign
start``, which repins.

The script runs ``workers`` lanes at once. Each lane resumes its share of the drained runs
at the old pin, one sweep each, and then, when the target's sweep knows ``--exclude``, goes
on with a one-worker sweep of the profile at the target that leaves every drained run alone:
a core freed by a drained run starts the target's new runs instead of waiting for the
slowest drained run. The lanes' sweeps at the target share the queue through the runs'
``LOCK`` files (a run another lane holds is skipped as busy). A run started at the target
during the drain is not in ``DRAIN.json``'s list, so a drain started again leaves it to the
target's sweeps, and the repin resumes it at the commit it started at."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.campaign_pins import CampaignError, detach, nice_prefix
from reproduce.spec import REPO_ROOT, RunSpec


def knows_first_seed(wt: Path) -> bool:
    """Whether the worktree's sweep has ``--first-seed`` (older pins resume seeds 0..k)."""
    return "--first-seed" in (wt / "reproduce" / "sweep.py").read_text()


def knows_exclude(wt: Path) -> bool:
    """Whether the worktree's sweep has ``--exclude`` (needed to run next to a drain)."""
    try:
        return "--exclude" in (wt / "reproduce" / "sweep.py").read_text()
    except OSError:
        return False


def drain_script(profile: str, wt: Path, root: Path, results: Path, specs: list[RunSpec],
                 workers: int, nice: int, target_wt: Path | None = None) -> str:
    """A shell script of ``workers`` lanes run at once: each resumes its share of ``specs``
    (the unfinished runs) from the pinned worktree ``wt``, one sweep each, then (with
    ``target_wt`` whose sweep knows ``--exclude``) sweeps the profile at the target with one
    worker, every drained run excluded. If every lane's drained runs finished, ``campaign
    start`` (which repins)."""
    old_sweep = not knows_first_seed(wt)
    prefix = nice_prefix(nice)
    root_s = str(root.resolve())
    lines = ["set -u"]
    for lane in range(workers):
        lines.append(f"lane{lane}() {{")
        for s in specs[lane::workers]:
            seeds = (["--seeds", str(s.seed + 1)] if old_sweep  # seeds 0..k; the rest is done
                     else ["--first-seed", str(s.seed), "--seeds", "1"])
            cmd = [*prefix, sys.executable, "-m", "reproduce.sweep", "--profile", profile,
                   "--results", root_s, "--workers", "1", "--no-progress",
                   "--domains", s.domain, "--algos", s.algo, *seeds]
            lines.append(f"  cd {shlex.quote(str(wt))} && {shlex.join(cmd)} || return 1")
        if target_wt is not None and knows_exclude(target_wt):
            cmd = [*prefix, sys.executable, "-m", "reproduce.sweep", "--profile", profile,
                   "--results", root_s, "--workers", "1", "--no-progress",
                   "--exclude", ",".join(s.key for s in specs)]
            lines.append(f"  cd {shlex.quote(str(target_wt))} && {shlex.join(cmd)}")
        lines += ["  return 0", "}"]
    lines += [f"lane{lane} & p{lane}=$!" for lane in range(workers)]
    lines.append("ok=0")
    lines += [f"wait $p{lane} || ok=1" for lane in range(workers)]
    lines.append('[ "$ok" = 0 ] || exit 1')
    start_cmd = [sys.executable, "-m", "reproduce.campaign", "start", "--profile", profile,
                 "--root", root_s, "--results", str(results.resolve()),
                 "--workers", str(workers),
                 "--nice", str(nice)]
    # exec: the start keeps this script's pid, so the pid file names it (a stop in the
    # handover stops it) until it writes its sweep's; start does not skip its own pid
    lines += [f"cd {shlex.quote(str(REPO_ROOT))}", f"exec {shlex.join(start_cmd)}"]
    return "\n".join(lines) + "\n"


def launch_drain(profile: str, wt: Path, root: Path, results: Path, specs: list[RunSpec],
                 workers: int, nice: int, target_wt: Path | None = None) -> tuple[int, Path]:
    """Run :func:`drain_script` detached, in a session of its own; (its pid, its log)."""
    if not knows_first_seed(wt):
        for s in specs:  # an old sweep resumes seeds 0..k: each lower seed must be done
            lower = [x for x in range(s.seed) if not (
                s.run_dir(root).parent / f"seed{x}" / DONE).is_file()]
            if lower:
                raise CampaignError(f"cannot drain {s.key} with this pin's sweep (no "
                                    f"--first-seed): seeds {lower} of its cell would start")
    script = root / profile / "drain.sh"
    script.write_text(drain_script(profile, wt, root, results, specs, workers, nice,
                                   target_wt))
    return detach(["bash", str(script)], root, root, f"{profile}_drain", nice)
