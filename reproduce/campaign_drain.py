"""The drain's sweeps (``python -m reproduce.campaign drain``): the unfinished runs of a
profile resumed at its old pin, one sweep each, and then ``campaign start``, which repins."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.campaign_pins import PID, CampaignError, detach, nice_prefix
from reproduce.spec import REPO_ROOT, RunSpec


def knows_first_seed(wt: Path) -> bool:
    """Whether the worktree's sweep has ``--first-seed`` (older pins resume seeds 0..k)."""
    return "--first-seed" in (wt / "reproduce" / "sweep.py").read_text()


def drain_script(profile: str, wt: Path, root: Path, results: Path, specs: list[RunSpec],
                 workers: int, nice: int) -> str:
    """A shell script: one sweep per unfinished run (``workers`` at a time, from the pinned
    worktree), then, if every one finished, ``campaign start`` (which repins)."""
    old_sweep = not knows_first_seed(wt)
    prefix = nice_prefix(nice)
    lines = ["set -u", f"cd {shlex.quote(str(wt))}"]
    for i in range(0, len(specs), workers):
        group = specs[i:i + workers]
        for k, s in enumerate(group):
            seeds = (["--seeds", str(s.seed + 1)] if old_sweep  # seeds 0..k; the rest is done
                     else ["--first-seed", str(s.seed), "--seeds", "1"])
            cmd = [*prefix, sys.executable, "-m", "reproduce.sweep", "--profile", profile,
                   "--results", str(root.resolve()), "--workers", "1", "--no-progress",
                   "--domains", s.domain, "--algos", s.algo, *seeds]
            lines.append(f"{shlex.join(cmd)} & p{k}=$!")
        lines.append(" && ".join(f"wait $p{k}" for k in range(len(group)))
                     + " || exit 1")
    start_cmd = [sys.executable, "-m", "reproduce.campaign", "start", "--profile", profile,
                 "--root", str(root.resolve()), "--results", str(results.resolve()),
                 "--workers", str(workers),
                 "--nice", str(nice)]
    pid_file = root.resolve() / profile / PID  # this script's pid: start would skip itself
    lines += [f"cd {shlex.quote(str(REPO_ROOT))}", f"rm -f {shlex.quote(str(pid_file))}",
              f"exec {shlex.join(start_cmd)}"]
    return "\n".join(lines) + "\n"


def launch_drain(profile: str, wt: Path, root: Path, results: Path, specs: list[RunSpec],
                 workers: int, nice: int) -> tuple[int, Path]:
    """Run :func:`drain_script` detached, in a session of its own; (its pid, its log)."""
    if not knows_first_seed(wt):
        for s in specs:  # an old sweep resumes seeds 0..k: each lower seed must be done
            lower = [x for x in range(s.seed) if not (
                s.run_dir(root).parent / f"seed{x}" / DONE).is_file()]
            if lower:
                raise CampaignError(f"cannot drain {s.key} with this pin's sweep (no "
                                    f"--first-seed): seeds {lower} of its cell would start")
    script = root / profile / "drain.sh"
    script.write_text(drain_script(profile, wt, root, results, specs, workers, nice))
    return detach(["bash", str(script)], root, root, f"{profile}_drain", nice)
