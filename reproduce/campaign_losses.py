"""CPU time a campaign lost because an unfinished run could not resume where it had stood.

A campaign's unfinished runs resume from their checkpoints, which live in the campaign root
(``/var/tmp/...``) of the machine that trained them. A session on a fresh machine finds no
root and starts them again from zero; a run killed between two checkpoints recomputes what
followed its last one. Neither loss shows in the ledger's CPU-hours spent, which sums the runs
as they now are.

The evidence is the copy of each unfinished run's ``progress.csv`` that ``campaign collect``
parks under ``<results>/<profile>/inflight/`` and that is committed. A run that resumed keeps,
unchanged, every row of that copy up to its checkpoint (the logger cuts ``progress.csv`` there,
and the columns of clock time differ in any row it recomputed). The parked rows the live run no
longer has as they were are lost work: before it replaces the parked copy, the next collect
appends their CPU time to ``<results>/<profile>/LOST.csv`` (:func:`record_losses`), once per
parked copy. It is a lower bound: what a run did after its last collect was never on record.
"""

from __future__ import annotations

import io
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.spec import RunSpec, profile_dir

LOST = "LOST.csv"
RESTARTED = "started again from zero (its checkpoint was not there: a fresh machine)"
RECOMPUTED = "resumed from a checkpoint older than the parked rows (killed between checkpoints)"


@dataclass(frozen=True)
class Loss:
    recorded_utc: str
    recorded_on: str  # the machine that found the loss
    domain: str
    algo: str
    seed: int
    parked_iterations: int
    parked_env_steps: int
    kept_iterations: int
    lost_env_steps: int
    lost_cpu_hours: float
    cpu_timed: bool  # False: the run predates cpu_time, its wall time counts
    cause: str


def _read(progress: Path) -> pd.DataFrame | None:
    """A progress.csv as strings (rows compare exactly); a last line without its newline
    (copied mid-write) is dropped."""
    if not progress.is_file():
        return None
    text = progress.read_text()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None


def kept_rows(parked: pd.DataFrame, live: pd.DataFrame | None) -> int:
    """How many leading rows of the parked progress the live run still has, unchanged."""
    if live is None or not set(parked.columns) <= set(live.columns):
        return 0
    n = min(len(parked), len(live))
    cols = list(parked.columns)
    same = (parked[cols].iloc[:n].to_numpy() == live[cols].iloc[:n].to_numpy()).all(axis=1)
    return n if same.all() else int(np.argmin(same))


def loss(spec: RunSpec, parked_dir: Path, live_dir: Path) -> Loss | None:
    """The work of ``parked_dir``'s progress that the run in ``live_dir`` no longer holds
    (None: nothing lost, or nothing parked)."""
    parked = _read(parked_dir / "progress.csv")
    if parked is None or not len(parked):
        return None
    kept = kept_rows(parked, _read(live_dir / "progress.csv"))
    if kept >= len(parked):
        return None
    cpu_timed = "cpu_time" in parked.columns and parked["cpu_time"].iloc[-1] != ""
    clock = pd.to_numeric(parked["cpu_time" if cpu_timed else "time"])
    steps = pd.to_numeric(parked["env_steps"])
    before = (clock.iloc[kept - 1], steps.iloc[kept - 1]) if kept else (0.0, 0)
    return Loss(
        recorded_utc=f"{datetime.now(UTC):%Y-%m-%d %H:%M}", recorded_on=socket.gethostname(),
        domain=spec.domain, algo=spec.algo, seed=spec.seed,
        parked_iterations=len(parked), parked_env_steps=int(steps.iloc[-1]),
        kept_iterations=kept, lost_env_steps=int(steps.iloc[-1] - before[1]),
        lost_cpu_hours=round(float(clock.iloc[-1] - before[0]) / 3600, 4),
        cpu_timed=bool(cpu_timed), cause=RECOMPUTED if kept else RESTARTED)


def parked_dir(results: Path, profile: str, spec: RunSpec) -> Path:
    """Where ``campaign collect`` parks an unfinished run's progress so far."""
    return profile_dir(results, profile) / "inflight" / spec.domain / spec.algo / f"seed{spec.seed}"


def pending_losses(profile: str, specs: list[RunSpec], root: Path, results: Path) -> list[Loss]:
    """What the parked runs lose in ``root`` as it now stands (not recorded)."""
    return [x for s in specs if (x := loss(s, parked_dir(results, profile, s), s.run_dir(root)))]


def losses_path(results: Path, profile: str) -> Path:
    return profile_dir(results, profile) / LOST


def read_losses(results: Path, profile: str) -> pd.DataFrame:
    """``LOST.csv`` of a profile (an empty frame when nothing was lost)."""
    path = losses_path(results, profile)
    if not path.is_file():
        return pd.DataFrame(columns=list(Loss.__dataclass_fields__))
    return pd.read_csv(path)


def record_losses(profile: str, specs: list[RunSpec], root: Path, results: Path) -> list[Loss]:
    """Append to ``LOST.csv`` what each parked run lost in ``root`` (a parked copy already on
    record, same run and same rows, is not counted twice); the new losses."""
    old = read_losses(results, profile)
    seen = {(r.domain, r.algo, int(r.seed), int(r.parked_iterations), int(r.parked_env_steps))
            for r in old.itertuples()}
    new = [x for x in pending_losses(profile, specs, root, results)
           if (x.domain, x.algo, x.seed, x.parked_iterations, x.parked_env_steps) not in seen]
    if new:
        path = losses_path(results, profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([asdict(x) for x in new]).to_csv(
            path, mode="a", header=not path.is_file(), index=False)
    return new


def lost_line(lost: pd.DataFrame) -> str:
    """The ledger's line on lost work (empty when nothing was lost)."""
    if not len(lost):
        return ""
    runs = ", ".join(f"{r.domain} {r.algo} seed {r.seed} {r.lost_cpu_hours:.2f} h "
                     f"({r.recorded_utc[:10]}, "
                     f"{'from zero' if r.kept_iterations == 0 else 'recomputed'})"
                     for r in lost.itertuples())
    return (f"- **CPU-hours lost to interruptions** (at least; not in the hours spent): "
            f"{lost['lost_cpu_hours'].sum():.1f}, the parked progress of unfinished runs that "
            f"could not resume where it stood (`{LOST}`, `reproduce.campaign_losses`): {runs}.")
