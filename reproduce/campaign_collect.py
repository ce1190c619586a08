"""The campaign's collect step, one profile at a time (``python -m reproduce.campaign
collect``): the finished runs of the campaign root into the checkout's results tree, the
progress so far of unfinished ones parked where the table never reads, and the ledger. A run
whose training stopped on a non-finite value is a result: it is copied like a finished one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qprop_tf.rundir import DONE, LOCK
from reproduce.campaign_losses import LOST, parked_dir, read_losses, record_losses
from reproduce.campaign_park import park_checkpoint
from reproduce.campaign_pins import effective, read_pin, read_settings, write_committed
from reproduce.ledger import ENDED, brief, ledger, ledger_path, render
from reproduce.results import stopped_nonfinite
from reproduce.reuse import holds_other_spec
from reproduce.spec import resolve_runs

SKIP = ("checkpoint", LOCK)
"""Left behind when a run is copied into the committed results."""


def copy_run(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*SKIP))


def link_run(src: Path, dst: Path, root: Path, results: Path) -> None:
    """``src``, a link in the root to another profile's finished run (``reproduce.reuse``),
    becomes the same relative link in ``results``: the target run is collected first where it
    is missing there, so git stores one copy. A link out of the root is copied instead."""
    target = src.resolve()
    try:
        rel = target.relative_to(root.resolve())
    except ValueError:
        copy_run(src, dst)
        return
    there = results / rel
    if not (there / DONE).is_file():
        copy_run(target, there)
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(os.path.relpath(there, dst.parent), target_is_directory=True)


def collect_profile(profile: str, root: Path, results: Path) -> None:
    specs = resolve_runs(profile, results=results)
    inflight = results / profile / "inflight"
    new = partial = stopped = ckpts = 0
    others: list[str] = []
    lost = record_losses(profile, specs, root, results)  # before parking anew
    for s in specs:
        src, dst = s.run_dir(root), s.run_dir(results)
        parked = parked_dir(results, profile, s)
        if src.is_dir() and holds_other_spec(s, src):
            others.append(s.key)  # never counted as this profile's run, nor drawn as one
            shutil.rmtree(parked, ignore_errors=True)
            continue
        if (src / DONE).is_file():
            if not (dst / DONE).is_file():
                (link_run(src, dst, root, results) if src.is_symlink() else copy_run(src, dst))
                new += 1
            shutil.rmtree(parked, ignore_errors=True)
        elif (src / "progress.csv").is_file() and stopped_nonfinite(src):
            if not dst.exists():  # stopped on a non-finite value: a result, counted and named
                copy_run(src, dst)
                stopped += 1
            shutil.rmtree(parked, ignore_errors=True)
        elif (src / "progress.csv").is_file():
            parked.mkdir(parents=True, exist_ok=True)
            ckpts += park_checkpoint(src, parked)  # first: its rows are all in the progress
            for name in ("progress.csv", "spec.json", "config.json"):
                if (src / name).is_file():
                    shutil.copy2(src / name, parked / name)
            partial += 1
    runs = ledger(specs, [root, results])
    workers, nice = effective(read_settings(root, profile), None, 0)
    text = render(profile, runs, [root, results],
                  f"python -m reproduce.campaign collect --profile {profile}",
                  read_losses(results, profile), workers, nice)
    out = ledger_path(results, profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    pin = read_pin(root, profile)
    write_committed(results, profile, {"nice": nice, "workers": workers},
                    int((~runs["status"].isin(ENDED)).sum()) if len(runs) else 0,
                    pin["commit"] if pin else None)
    if len(runs):
        from reproduce.ledger_plot import plot_ledger  # matplotlib: only when collecting

        plot_ledger(runs, f"Campaign {profile}: {brief(runs).split(';')[0]}; CPU-h spent "
                    f"{runs['hours_spent'].sum():.1f}, left at most "
                    f"{runs['hours_left_measured'].sum():.1f}",
                    results / profile / "figures")
    print(f"campaign: {profile}: {new} finished run(s) copied into {results}"
          + (f", {stopped} stopped on a non-finite value (a result, counted)" if stopped else "")
          + f"; {partial} "
          f"unfinished progress file(s) under {inflight}"
          + (f" ({ckpts} with its small checkpoint, which a fresh machine resumes)"
             if ckpts else "") + f"; ledger in {out}"
          + (f"\n  not collected, another spec's run in the place of this profile's "
             f"(`python -m reproduce.campaign rehome --profile {profile}` moves it, once "
             f"finished, to the profile whose spec it is): {', '.join(others)}"
             if others else "")
          + "".join(f"\n  LOST: {x.domain} {x.algo} seed {x.seed}: {x.lost_cpu_hours:.2f} "
                    f"CPU-h, {x.lost_env_steps} env steps, {x.cause}; in {LOST}"
                    for x in lost))
