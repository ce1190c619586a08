"""Reuse finished runs of other profiles whose spec is this profile's, by relative symlink.

    python -m reproduce.reuse --profile bestbatch --from table1,ablation [--results results]
        [--dry-run]

A run counts as the same run when its ``RunSpec.identity()`` (everything but the profile name
and the progress bar) equals the one this profile resolves: same domain, algorithm, seed,
budget, early stop and every override. For each run of ``--profile`` that has no directory
yet, the first such finished run (DONE) found in the ``--from`` profiles' trees is linked into
place: ``<results>/<profile>/runs/<Domain>/<algo>/seed<k> -> ../../../../<other>/runs/...``.
The sweep then skips it, the tables read it, and git stores the link, not a second copy.
Nothing is overwritten; a run with a different spec is never linked.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from qprop_tf.rundir import DONE
from reproduce.runner import SPEC, read_json
from reproduce.spec import RunSpec, SpecError, check_profile, profiles, resolve_runs


def same_run(spec: RunSpec, other_dir: Path) -> bool:
    """Whether ``other_dir`` holds a finished run of exactly ``spec`` (profile aside)."""
    if not (other_dir / DONE).is_file():
        return False
    recorded = read_json(other_dir / SPEC)
    if recorded is None:
        return False
    try:
        return RunSpec.from_dict(recorded).identity() == spec.identity()
    except (KeyError, TypeError, ValueError):
        return False


def holds_other_spec(spec: RunSpec, run_dir: Path) -> bool:
    """Whether ``run_dir`` (``spec``'s place) holds a run of another spec: its spec.json is
    readable and its identity differs (e.g. a Humanoid run from before ``action_scale``
    existed, in the place of the authors' setting's run). Such a run is not ``spec``'s."""
    recorded = read_json(run_dir / SPEC)
    if recorded is None:
        return False
    try:
        return RunSpec.from_dict(recorded).identity() != spec.identity()
    except (KeyError, TypeError, ValueError):
        return False


def reuse(results: Path, profile: str, sources: list[str], dry_run: bool = False
          ) -> list[tuple[Path, Path]]:
    """Link every missing run of ``profile`` to an identical finished run of ``sources``;
    return the (link, target) pairs made (or, with ``dry_run``, that would be made)."""
    for name in [profile, *sources]:
        check_profile(name)
    if profile in sources:
        raise SpecError(f"--from must not include the profile itself ({profile})")
    made: list[tuple[Path, Path]] = []
    for spec in resolve_runs(profile, results=results):
        link = spec.run_dir(results)
        if link.exists() or link.is_symlink():
            continue
        for other in sources:
            target = replace(spec, profile=other).run_dir(results)
            if same_run(spec, target):
                if not dry_run:
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(os.path.relpath(target, link.parent),
                                    target_is_directory=True)
                made.append((link, target))
                break
    return made


def reuse_all(results: Path, profile: str) -> list[tuple[Path, Path]]:
    """:func:`reuse` from every other profile that has runs under ``results`` (sorted by
    name): what ``campaign start`` does before a sweep, so that no profile trains a run that
    another has finished."""
    others = [p for p in sorted(profiles()) if p != profile and (results / p / "runs").is_dir()]
    return reuse(results, profile, others) if others else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.reuse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, help="the profile whose missing runs to link")
    p.add_argument("--from", dest="sources", required=True,
                   help="comma-separated profiles to take identical finished runs from")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--dry-run", action="store_true", help="list the links, make none")
    args = p.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    try:
        made = reuse(args.results, args.profile, sources, args.dry_run)
    except SpecError as exc:
        print(f"reproduce.reuse: error: {exc}", file=sys.stderr)
        return 2
    verb = "would link" if args.dry_run else "linked"
    for link, target in made:
        print(f"{verb} {link} -> {target}")
    print(f"{len(made)} run(s) {verb} into {args.results / args.profile / 'runs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
