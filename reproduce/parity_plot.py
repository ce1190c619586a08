"""The figure of ``reproduce.parity``: return against env steps per domain, the chain's rows
and sb3-contrib's TRPO, each seed's curve on a common grid, median over seeds and 25–75% band.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reproduce.parity_chain import SB3, SB3_LABEL
from reproduce.parity_curves import Curve, kilo

GRID_STEPS = 5000  # the figures' common x grid


def row_colors(chain: list[str]) -> dict[str, Any]:
    """A sequential palette along the chain (the progression reads), sb3 in red."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    colors: dict[str, Any] = {r: cmap(x) for r, x in zip(chain, np.linspace(0, 0.85, len(chain)),
                                                          strict=True)}
    return {**colors, SB3: "#d62728"}


def binned(curves: dict[str, list[Curve]]) -> pd.DataFrame:
    """Each seed's curve interpolated onto the GRID_STEPS grid, inside its own range."""
    frames = []
    end = max((c.end for cs in curves.values() for c in cs), default=0.0)
    grid = np.arange(GRID_STEPS, end + GRID_STEPS, GRID_STEPS, dtype=float)
    for row, cs in curves.items():
        for c in cs:
            if c.steps.size == 0:
                continue
            inside = grid[(grid >= c.steps[0]) & (grid <= c.steps[-1])]
            frames.append(pd.DataFrame({"env_steps": inside, "row": row,
                                        "return": np.interp(inside, c.steps, c.returns)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["env_steps", "row", "return"])


def plot_domain(domain: str, env_id: str, curves: dict[str, list[Curve]], chain: list[str],
                out: Path, last: str | None = None) -> list[Path]:
    """Return against env steps: (a) released, the chain's last cumulative row ``last``, sb3;
    (b) every row (when > 3)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from reproduce.plot_style import save

    data = binned(curves)
    present = [r for r in curves if r in set(data["row"])]
    if not present:
        return []
    ours = [r for r in present if r != SB3]
    ends = [r for r in ours if r in (chain[0], last)] or ours[:1] + ours[-1:]
    first = list(dict.fromkeys(ends + [r for r in present if r == SB3]))
    panels = [(f"(a) {', '.join(first)}", first), ("(b) every row", present)]
    panels = panels[:1] if len(present) <= len(first) else panels
    colors = row_colors(chain)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 5), sharey=True,
                             squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        sns.lineplot(data=data[data["row"].isin(rows)], x="env_steps", y="return", hue="row",
                     hue_order=rows, palette={r: colors[r] for r in rows}, estimator="median",
                     errorbar=("pi", 50), ax=ax, legend=False, lw=1.6)
        ax.set_title(title if len(panels) > 1 else "", fontsize=11)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: kilo(x)))
        ax.set_xlabel("env steps")
        ax.set_ylabel("return (mean of the episodes ended in a batch)")
    names = [SB3_LABEL.split(" (")[0] if r == SB3 else f"{chain.index(r) + 1}. {r}"
             for r in present]
    fig.legend([Line2D([], [], color=colors[r], lw=2.5) for r in present], names,
               loc="lower center", ncol=min(5, len(present)), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Parity on {domain} ({env_id}): median over seeds, 25–75% band", fontsize=12)
    fig.tight_layout(rect=(0, 0.07 * math.ceil(len(present) / 5), 1, 1))
    return save(fig, out, f"parity_{domain}")
