"""The campaign's ledger as a picture: ``<results>/<profile>/figures/campaign.png/.svg``.

One row per domain, one block per algorithm, one square per seed, coloured by the run's
status (:data:`reproduce.ledger.STATUSES`); an unfinished run's square is filled to the share
of its budget it has trained. Beside each block: the CPU-hours its cell has spent, and those
left at the rates its runs measured (the ledger's upper bound). ``campaign collect`` draws it
with the ledger, from the same table of runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.patches import Patch, Rectangle

from reproduce.plot_style import algo_order, label, plt, save

COLOURS = {"done": "#2ca02c", "stopped (non-finite)": "#9467bd", "in flight": "#ff7f0e",
           "paused": "#e6b422", "failed": "#d62728", "to go": "#d9d9d9"}
UNFINISHED = ("in flight", "paused")
NAME = "campaign"


def plot_ledger(runs: pd.DataFrame, title: str, out: Path) -> list[Path]:
    """Draw the ledger's runs (``reproduce.ledger.ledger``'s table) into ``out``; the paths."""
    domains = list(dict.fromkeys(runs["domain"]))
    algos = algo_order(set(runs["algo"]))
    seeds = sorted(set(int(s) for s in runs["seed"]))
    width = len(seeds) + 2.6  # the squares, then the cell's hours
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * width * len(algos), 0.9 + 0.5 * len(domains)))
    for i, domain in enumerate(domains):
        y = len(domains) - 1 - i
        for j, algo in enumerate(algos):
            cell = runs[(runs["domain"] == domain) & (runs["algo"] == algo)]
            if cell.empty:
                continue
            x0 = j * width
            for r in cell.itertuples():
                x = x0 + seeds.index(int(r.seed))
                colour = COLOURS.get(r.status, "white")
                share = (min(1.0, r.env_steps / r.budget_steps) if r.budget_steps else 0.0)
                if r.status in UNFINISHED:
                    ax.add_patch(Rectangle((x + 0.05, y + 0.1), 0.9, 0.8, fc="white",
                                           ec=colour, lw=1.5))
                    ax.add_patch(Rectangle((x + 0.05, y + 0.1), 0.9 * share, 0.8, fc=colour,
                                           ec="none"))
                    text = f"{share:.0%}"
                else:
                    ax.add_patch(Rectangle((x + 0.05, y + 0.1), 0.9, 0.8, fc=colour,
                                           ec="white"))
                    text = f"s{r.seed}"
                ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=7,
                        color="black" if r.status in ("to go", *UNFINISHED) else "white")
            left = cell["hours_left_measured"].sum()
            ax.text(x0 + len(seeds) + 0.15, y + 0.5,
                    f"{cell['hours_spent'].sum():.1f} h\n" + (f"+{left:.1f} h" if left else "✓"),
                    ha="left", va="center", fontsize=7, color="0.25", linespacing=1.1)
    ax.set_xlim(-0.2, width * len(algos))
    ax.set_ylim(-0.1, len(domains) + 0.05)
    ax.set_yticks([len(domains) - 0.5 - i for i in range(len(domains))], domains)
    ax.set_xticks([j * width + len(seeds) / 2 for j in range(len(algos))],
                  [label(a) for a in algos])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.grid(False)
    present = [s for s in COLOURS if s in set(runs["status"])]
    handles = [Patch(fc=COLOURS[s], label=s + (" (filled: share of budget trained)"
                                               if s in UNFINISHED else "")) for s in present]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
              ncol=min(3, len(handles)), fontsize=7, frameon=False)
    ax.set_title(title + "\nper cell: seeds by status; CPU-hours spent, + left at the rates "
                 "its runs measured (full budget)", fontsize=8)
    return save(fig, out, NAME)
