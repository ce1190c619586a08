"""``python -m reproduce.campaign rehome --profile P [--dry-run]``: move every finished run
that sits in ``P``'s place but is another spec's (``reuse.holds_other_spec``; e.g. a Humanoid
run from before ``action_scale`` in ``table1``, whose spec is now the authors' setting) into
the tree of the one profile whose spec it is (``humanoid-env``), in the campaign root and in
the checkout's results alike. Nothing is edited and nothing is deleted: the directory moves
whole. A run that is unfinished (let it finish at its pin first), with no home or several,
or whose home already holds a run, stays where it is and is named."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.reuse import holds_other_spec
from reproduce.spec import RunSpec, first_seed, profiles, resolve_runs


def homes(spec: RunSpec, run_dir: Path) -> list[str]:
    """The other profiles that list this run's domain, algorithm and seed and whose spec of
    it is the one ``run_dir`` holds (``holds_other_spec`` is False there)."""
    found = []
    for name, prof in profiles().items():
        seed0 = first_seed(name)
        if (name == spec.profile or spec.domain not in prof.get("domains", [])
                or spec.algo not in prof.get("algos", [])
                or not seed0 <= spec.seed < seed0 + int(prof["seeds"])):
            continue
        theirs = resolve_runs(name, [spec.domain], [spec.algo], 1, first=spec.seed)[0]
        if not holds_other_spec(theirs, run_dir):
            found.append(name)
    return found


def rehome(profile: str, trees: list[Path], dry_run: bool = False
           ) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(the moves made, or with ``dry_run`` to be made; the runs left where they are, why)."""
    moves: list[tuple[Path, Path]] = []
    left: list[str] = []
    for spec in resolve_runs(profile):
        for tree in trees:
            src = spec.run_dir(tree)
            if not src.is_dir() or src.is_symlink() or not holds_other_spec(spec, src):
                continue
            where = f"{spec.key} in {tree}"
            if not (src / DONE).is_file():
                left.append(f"{where}: unfinished (let it finish at its own pin first)")
                continue
            home = homes(spec, src)
            if len(home) != 1:
                left.append(f"{where}: " + (f"several profiles' spec: {', '.join(home)}"
                                            if home else "no profile's spec"))
                continue
            dst = replace(spec, profile=home[0]).run_dir(tree)
            if dst.exists() or dst.is_symlink():
                left.append(f"{where}: {dst} already exists")
                continue
            moves.append((src, dst))
            if not dry_run:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(src, dst)
    return moves, left
