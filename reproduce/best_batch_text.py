"""The words of issue 15's report (``reproduce.best_batch``): its introduction, the note on
the time-limit sensitivity, and how a domain's choice is marked."""

from __future__ import annotations

SELECTION = "selection.json"

INTRO = (
    "Selection on profile `bestbatch` (seeds 0-4), choice = lowest median (ties: more "
    "seeds crossed, then the smaller batch); verdict on profile `bestbatch-confirm` "
    "(held-out seeds 5-9) only. Var. after/before: the median over a cell's runs of each "
    "run's median over iterations of signal_var_after / signal_var_before (Q-Prop). "
    "Baseline ran away: the seeds whose advantage std exceeded 100x the running median "
    "of its earlier healthy iterations (reproduce.baseline_runaway; counted as they are), "
    "with its early median -> largest value, the first flagged episode and the flagged "
    "iterations. Critic diverged: the Q-Prop seeds whose TD loss was flagged "
    "(qprop_tf.divergence: > 100x the running median of its healthy iterations; counted "
    "as they are), from which episode, the largest TD loss, and whether the seed crossed "
    "during the divergence. Return after crossing: the median over the crossed seeds "
    "of each one's mean return from its first crossing to its end (the early-stop tail); "
    "well below the threshold, the crossings were noisy batches (few episodes per batch) "
    "rather than policies at the threshold.")

TRUNCATION_NOTE = (
    "Our default bootstraps V and Q' at the time limit (`bootstrap_truncation = true`, a "
    "deviation); the authors treat it as terminal. The same batch-1000 cells and seeds 0-4 "
    "with the authors' behaviour (`-term`), against the grid's: ratio of medians "
    "terminal/ours with reproduce.compare's CI. Not part of the selection or the verdict, "
    "which stay on the grid's runs.")


def domain_status(domain: str, fixed: dict[str, list[str]], left: dict[str, int],
                  early: dict[str, int] | None = None) -> str:
    """A domain's choice: written to the selection file (final; ``early`` names the domains
    chosen before their grid was complete, with the runs then missing), or provisional."""
    if domain in fixed:
        when = (f"; decided with {early[domain]} grid runs missing, which no outcome could "
                "change" if early and domain in early else "")
        return f"chosen ({SELECTION}: {', '.join(fixed[domain])}{when})"
    return f"provisional: {left.get(domain, 0)} grid runs missing"


def chosen_mark(row: dict[str, object], fixed: dict[str, list[str]],
                 left: dict[str, int]) -> str:
    """**yes** for a cell of the selection file; "leading" for the current pick of a domain
    not chosen yet (its grid incomplete); "leading, NOT the file's choice" should the grid
    now pick otherwise than the file (which `select` refuses)."""
    if not row["chosen"]:
        return ""
    d, algo = str(row["domain"]), str(row["algo"])
    if d not in fixed:
        return f"leading ({left.get(d, 0)} grid runs missing)"
    return "**yes**" if algo in fixed[d] else f"leading, NOT the file's choice {fixed[d]}"


def figure_status(domain: str, fixed: dict[str, list[str]], left: dict[str, int]) -> str:
    """The figure title's status line: empty for a chosen, complete domain."""
    if domain in fixed:
        return f"chosen; {left[domain]} grid runs still missing" if left.get(domain) else ""
    return f"star = leading batch, provisional: {left.get(domain, 0)} grid runs missing"
