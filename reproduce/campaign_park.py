"""What a campaign root takes from the committed results when a sweep starts: the finished
runs (:func:`seed_root`), and the small checkpoints that survive a machine change, parked by
``collect`` and restored by a fresh machine's ``start``.

An unfinished run's checkpoints live in the campaign root, which a new machine does not
have, so its runs start again from zero (``reproduce.campaign_losses``). For a run whose
checkpoint is small, one without a replay buffer (TRPO, VPG: about 80 KB on Ant), ``campaign
collect`` also parks its latest checkpoint beside its progress, in
``<results>/<profile>/inflight/<Domain>/<algo>/seed<k>/checkpoint/``, which is committed. A
fresh root's ``start`` copies such a parked run into the root, and the sweep resumes it: the
work lost is then only what followed that checkpoint (``LOST.csv`` says so, "recomputed").
A checkpoint with replay chunks (Q-Prop, DDPG: 150 MB on HalfCheetah, over 1 GB on
Humanoid) is never parked.

A run never resumes under another commit: a parked run is restored only into a profile
pinned at the commit it last ran at (its ``config.json``'s ``git_commit``), which is what a
fresh root's pin is when the committed ``CAMPAIGN.json`` names it and git knows it
(:func:`fresh_pin_commit`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qprop_tf.checkpoint import CHECKPOINT_DIR, LATEST, REPLAY_DIR
from qprop_tf.rundir import DONE
from reproduce.campaign_losses import parked_dir
from reproduce.campaign_pins import CampaignError, git, read_committed, run_commit
from reproduce.spec import RunSpec

PARK_MAX_BYTES = 8 * 2**20
"""A checkpoint larger than this is not parked (Ant TRPO's is about 80 KB)."""


def park_checkpoint(src: Path, parked: Path) -> bool:
    """Copy ``src``'s latest checkpoint into ``parked/checkpoint/`` when it is small and has
    no replay chunks (else remove any parked one); whether one is parked now. Call it before
    copying the progress: a checkpoint's rows are then all in the parked ``progress.csv``."""
    ck, dst = src / CHECKPOINT_DIR, parked / CHECKPOINT_DIR
    try:
        name = (ck / LATEST).read_text().strip()
        files = [p for p in (ck / name).iterdir() if p.is_file()]
        replay = ck / REPLAY_DIR
        small = (not (replay.is_dir() and any(replay.iterdir()))
                 and sum(p.stat().st_size for p in files) <= PARK_MAX_BYTES)
    except OSError:  # none yet, or rotated away while read: the previous collect's stays
        return (dst / LATEST).is_file()
    if not small:
        shutil.rmtree(dst, ignore_errors=True)
        return False
    if (dst / name).is_dir():
        return True
    tmp = parked / (CHECKPOINT_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / name).mkdir(parents=True)
        for f in files:
            shutil.copy2(f, tmp / name / f.name)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return (dst / LATEST).is_file()
    (tmp / LATEST).write_text(name + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return True


def seed_root(specs: list[RunSpec], results: Path, root: Path) -> int:
    """Copy the committed finished runs into the root (where it has none), so they are skipped."""
    n = 0
    for s in specs:
        src, dst = s.run_dir(results), s.run_dir(root)
        if (src / DONE).is_file() and not dst.exists():
            shutil.copytree(src, dst)
            n += 1
    return n


def fresh_pin_commit(results: Path, profile: str) -> str | None:
    """The commit a profile with no pin in the root is pinned at: the one its committed
    campaign was pinned at, when git knows it; else None (HEAD)."""
    state = read_committed(results, profile)
    commit = (state or {}).get("pinned_commit")
    if not commit:
        return None
    try:
        return git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    except CampaignError:  # not in this clone
        print(f"campaign: {profile}: its campaign's commit {commit[:7]} is not in this "
              "repository; pinning HEAD, its parked checkpoints unused")
        return None


def has_parked_checkpoint(results: Path, profile: str, spec: RunSpec) -> bool:
    """Whether ``collect`` parked ``spec``'s checkpoint beside its progress."""
    return (parked_dir(results, profile, spec) / CHECKPOINT_DIR / LATEST).is_file()


def restore_parked(profile: str, specs: list[RunSpec], root: Path, results: Path,
                   commit: str) -> list[str]:
    """Copy into ``root`` every parked run with a checkpoint made at ``commit`` and no run
    directory there yet (a fresh machine), so that the sweep resumes it; their keys."""
    out = []
    for s in specs:
        src, dst = parked_dir(results, profile, s), s.run_dir(root)
        if dst.exists() or not has_parked_checkpoint(results, profile, s):
            continue
        if run_commit(src) != commit:
            continue  # never resumed under another commit: it starts from zero
        shutil.copytree(src, dst)
        out.append(s.key)
    return out
