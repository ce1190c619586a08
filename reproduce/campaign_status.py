"""``python -m reproduce.campaign status``, per profile: whether its sweep runs (and at what
group niceness), its pin and drain, and its ledger (``reproduce.ledger``), whole or as two
lines (``--brief``) with the wall-clock hours left on its workers, and a line for each run
in flight or paused (how far it is, and what is left of it)."""

from __future__ import annotations

from pathlib import Path

from reproduce.campaign_losses import read_losses
from reproduce.campaign_park import has_parked_checkpoint
from reproduce.campaign_pins import (
    autogroup_nice,
    effective,
    read_drain,
    read_pin,
    read_settings,
    running_pid,
)
from reproduce.campaign_stop import timer_line
from reproduce.ledger import brief, ledger, render
from reproduce.spec import resolve_runs


def group_nice_note(pid: int, profile: str, root: Path) -> str:
    """``", group nice N"`` for a running sweep under autogroup scheduling, with a warning
    when N is not the profile's recorded niceness (a sweep started by code older than
    :func:`~reproduce.campaign_pins.autogroup_prefix` runs at a full group's share)."""
    group = autogroup_nice(pid)
    if group is None:
        return ""
    want = effective(read_settings(root, profile), None, 0)[1]
    if group == want:
        return f", group nice {group}"
    return (f", group nice {group}, NOT its {want}: `echo {want} > /proc/{pid}/autogroup`, "
            "or stop and restart it")


def underway(runs, parked: set[tuple[str, str, int]] | None = None) -> list[str]:
    """One line per run in flight or paused: its env steps against its budget, CPU-hours
    spent, and left at its cell's measured rate (the ledger's ``hours_left_measured``); with
    ``parked`` (the (domain, algo, seed) whose checkpoint ``collect`` parked in the results,
    ``reproduce.campaign_park``), what a machine change would do to it."""
    rows = runs[runs["status"].isin(("in flight", "paused"))].sort_values("order")
    return [f"  {r.domain} {r.algo} seed {r.seed}: {r.status}, {r.env_steps / 1e6:.2f}M of "
            f"{r.budget_steps / 1e6:.2f}M env steps ({r.env_steps / r.budget_steps:.0%}), "
            f"{r.hours_spent:.2f} CPU-h spent, at most {r.hours_left_measured:.2f} left"
            + ("" if parked is None else
               "; a new machine resumes it from its parked checkpoint"
               if (r.domain, r.algo, r.seed) in parked else
               "; a new machine starts it from zero")
            for r in rows.itertuples()]


def status_profile(profile: str, root: Path, results: Path, short: bool = False) -> None:
    specs = resolve_runs(profile, results=results)
    pid = running_pid(root, profile)
    pin = read_pin(root, profile)
    drain = read_drain(root, profile)
    print(f"campaign root {root}, profile {profile}: "
          + (f"sweep running (pid {pid}{group_nice_note(pid, profile, root)})" if pid
             else "no sweep")
          + (f", pinned at {pin['commit'][:7]}" if pin else ", not pinned yet")
          + (f", draining to {drain['target'][:7]}" if drain else "") + timer_line(root)
          + "; sweeps start with " + ", ".join(
              f"{k} {v}" for k, v in zip(("workers", "nice"),
                                         effective(read_settings(root, profile), None, 0),
                                         strict=True)))
    roots = [r for r in (root, results) if r.is_dir()]
    runs = ledger(specs, roots)
    lost = read_losses(results, profile)
    workers = effective(read_settings(root, profile), None, 0)[0]
    parked = {(s.domain, s.algo, s.seed) for s in specs
              if has_parked_checkpoint(results, profile, s)}
    if short:
        print("\n".join([f"  {brief(runs, lost, workers)}", *underway(runs, parked)]))
        return
    print("\n".join(underway(runs, parked)))
    print(render(profile, runs, roots,
                 f"python -m reproduce.campaign status --profile {profile}", lost, workers))
