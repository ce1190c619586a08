"""When a domain's choice of batch is already decided on an incomplete grid (issue 15).

A cell's median is over the seeds the profile asks for. While some of them are missing, the
final median lies between two bounds:

- **upper**: every missing seed censored (+inf, as a seed that never crosses counts);
- **lower**: every missing seed crossing at 0 episodes (no run can cross sooner).

If one cell's upper bound lies strictly below every other cell's lower bound in its family,
no outcome of the missing runs can change the choice (lowest median; its tie rules never
come into play, the inequality being strict). ``reproduce.best_batch select`` then writes
that choice without waiting for the rest of the grid, so the held-out seeds can start; the
rest of the grid still runs for the report, and the selection file's check that a written
choice never changes guards the argument.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from reproduce.compare_stats import censored_median


class _Side(Protocol):
    values: np.ndarray
    censored: np.ndarray


class GridCell(Protocol):
    """What a cell of the grid needs here: its counted runs and the seeds it asks for."""

    side: _Side
    expected: int


def median_bounds(values: object, censored: object, expected: int) -> tuple[float, float]:
    """(lower, upper) of the censored median over ``expected`` seeds, of which those given
    are known: lower = median(known ∪ {0}^m), upper = median(known ∪ {+inf}^m), m missing."""
    v = np.asarray(values, dtype=float).ravel()
    c = np.asarray(censored, dtype=bool).ravel()
    m = expected - v.size
    if m < 0:
        raise ValueError(f"{v.size} seeds counted, more than the {expected} expected")
    if expected == 0:
        return math.nan, math.nan
    lower = censored_median(np.concatenate([v, np.zeros(m)]),
                            np.concatenate([c, np.zeros(m, dtype=bool)]))
    upper = censored_median(np.concatenate([v, np.full(m, np.inf)]),
                            np.concatenate([c, np.ones(m, dtype=bool)]))
    return lower, upper


def cell_bounds(cell: GridCell) -> tuple[float, float]:
    return median_bounds(cell.side.values, cell.side.censored, cell.expected)


def decided(cells: Sequence[GridCell]) -> GridCell | None:
    """The cell that every outcome of the missing runs chooses, or None while the outcome can
    still change the choice (or the family has a single cell with seeds missing)."""
    if len(cells) < 2:
        return None
    bounds = [cell_bounds(c) for c in cells]
    for i, cell in enumerate(cells):
        upper = bounds[i][1]
        if math.isfinite(upper) and all(upper < lo for j, (lo, _) in enumerate(bounds)
                                        if j != i):
            return cell
    return None


def decided_early_record(path: Path) -> dict[str, dict]:
    """A selection file's ``decided_early`` (domain -> runs then missing and the median
    bounds), leniently like :func:`reproduce.spec.selection_choices`: {} when absent."""
    try:
        return dict(json.loads(path.read_text()).get("decided_early", {}))
    except (OSError, ValueError, AttributeError):
        return {}
