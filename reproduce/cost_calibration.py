"""The cost model against what runs measured: env steps per CPU-second, per domain and family.

``python -m reproduce.cost_calibration --roots /var/tmp/qprop-campaign results
[--out results/bench/cost_calibration.md]`` reads every run under ``<root>/<profile>/runs/``
whose algorithm is one of the model's own (``trpo`` at batch 25000, ``qprop-c`` at 5000,
``ddpg``: the Table 1 rows the rates in ``reproduce/configs/profiles.toml`` are for) and whose
``progress.csv`` logs ``cpu_time`` (the process's own CPU seconds), finished or not. A run's
rate is its last ``env_steps`` over its last ``cpu_time``, start-up included; a run found in
several roots or profiles (collected copies, linked seeds) counts once. It prints, and writes,
each (CPU, family, domain)'s median rate next to the model's for that CPU, and their ratio.
The CPU is what the run's ``config.json`` recorded (``machines[].cpu``; a run resumed across
machines is "A + B", one that predates the record is "unrecorded"), so rates from different
machines never share a median. ``--toml`` also prints this machine's medians as a
``[rates_cpu."<CPU>".<family>]`` table for ``profiles.toml`` (``reproduce.cost``), which the
cost model then uses on this CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from qprop_tf.runtime import cpu_model, git_commit
from reproduce.cost import family, rate
from reproduce.ledger import last_progress

MODEL_ALGOS = ("trpo", "qprop-c", "ddpg")
MIN_CPU_SECONDS = 60.0  # shorter runs are mostly start-up
UNRECORDED = "unrecorded"


def config_cpus(config: dict | None) -> str:
    """The CPU(s) in a run's config (its ``machines`` list), in order, each once, joined by
    " + "; :data:`UNRECORDED` when the config names none."""
    machines = (config or {}).get("machines") or []
    cpus = list(dict.fromkeys(str(m.get("cpu") or "?") for m in machines))
    return " + ".join(cpus) if cpus else UNRECORDED


def run_cpu(run_dir: Path) -> str:
    """The CPU(s) a run ran on, from its ``config.json`` (:func:`config_cpus`)."""
    try:
        return config_cpus(json.loads((run_dir / "config.json").read_text()))
    except (OSError, ValueError):
        return UNRECORDED


def measured_rates(roots: list[Path]) -> pd.DataFrame:
    """One row per run of :data:`MODEL_ALGOS` with ``cpu_time``: profile, cpu, domain, algo,
    seed, env_steps, cpu_seconds, rate (env steps per CPU-second), model (the cost model's
    rate)."""
    rows = []
    for root in roots:
        for spec_file in sorted(Path(root).glob("*/runs/*/*/seed*/spec.json")):
            try:
                spec = json.loads(spec_file.read_text())
            except (OSError, ValueError):
                continue
            if spec.get("algo") not in MODEL_ALGOS:
                continue
            steps, seconds, cpu_timed = last_progress(spec_file.parent)
            if not cpu_timed or seconds < MIN_CPU_SECONDS:
                continue
            cpu = run_cpu(spec_file.parent)
            model = rate(spec.get("base_algo", spec["algo"]), spec["domain"], cpu)
            rows.append({"profile": spec_file.parents[4].name,
                         "cpu": cpu, "domain": spec["domain"],
                         "algo": spec["algo"], "seed": int(spec["seed"]),
                         "env_steps": steps, "cpu_seconds": seconds,
                         "rate": steps / seconds, "model": model})
    cols = ["profile", "cpu", "domain", "algo", "seed", "env_steps", "cpu_seconds", "rate", "model"]
    df = pd.DataFrame(rows, columns=cols)
    return df.drop_duplicates(subset=["domain", "algo", "seed", "env_steps", "cpu_seconds"])


def calibration(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (cpu, algo, domain): runs, median/min/max measured rate, the model's rate,
    median/model."""
    g = runs.groupby(["cpu", "algo", "domain"])
    out = pd.DataFrame({"runs": g.size(), "median": g["rate"].median(),
                        "min": g["rate"].min(), "max": g["rate"].max(),
                        "model": g["model"].first()})
    out["measured_over_model"] = out["median"] / out["model"]
    return out.reset_index()


def render(cal: pd.DataFrame, roots: list[Path], command: str) -> str:
    lines = ["# The cost model against the runs' own CPU time", "",
             f"Command: `{command}`; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit "
             f"{git_commit()[:7]}; this machine's CPU: {cpu_model()} (the runs record theirs "
             "only from 618e368 on). Roots: " + ", ".join(f"`{r}`" for r in roots) + ".", "",
             "Rate: a run's env steps over its process CPU seconds (start-up included; DDPG: "
             "training steps, its evaluation rollouts in the CPU time). Model: "
             "`reproduce/configs/profiles.toml`, for the run's CPU ([rates_cpu] where it has "
             "the cell, else [rates]).", "",
             "| CPU | algorithm | domain | runs | measured steps per CPU-s: median [min–max] "
             "| model | measured / model |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.cpu} | {r.algo} | {r.domain} | {r.runs} | {r.median:,.0f} "
              f"[{r.min:,.0f}–{r.max:,.0f}] | {r.model:,.0f} | {r.measured_over_model:.2f} |"
              for r in cal.itertuples()]
    if cal["cpu"].nunique() > 1:
        lines += ["", "Per CPU, the median over its cells of measured / model:", ""]
        lines += [f"- {cpu}: {ratio:.2f} ({n} cells)" for cpu, ratio, n in
                  cal.groupby("cpu")["measured_over_model"].agg(["median", "size"])
                  .itertuples()]
    return "\n".join(lines) + "\n"


def rates_toml(cal: pd.DataFrame, cpu: str, command: str) -> str:
    """``cpu``'s median rates as ``[rates_cpu."<cpu>".<family>]`` tables for profiles.toml,
    rounded to 10 steps/s, each entry with its runs and range (empty when ``cpu`` has none)."""
    mine = cal[cal["cpu"] == cpu]
    if mine.empty:
        return ""
    lines = [f"# {cpu}: medians of its runs' env steps per CPU-second, from `{command}` "
             f"({datetime.now(UTC):%Y-%m-%d}, commit {git_commit()[:7]})"]
    for fam, rows in mine.assign(family=mine["algo"].map(family)).groupby("family"):
        lines += ["", f'[rates_cpu."{cpu}".{fam}]']
        lines += [f"{r.domain} = {round(r.median, -1):.0f}".ljust(30)
                  + f"# {r.runs} run(s), {r.min:,.0f}-{r.max:,.0f}" for r in rows.itertuples()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", nargs="+", type=Path, required=True,
                        help="results roots, each holding <profile>/runs/")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--toml", action="store_true",
                        help="also print this machine's medians as a [rates_cpu] table")
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.roots if not r.is_dir()]
    if missing:
        parser.error(f"no such directory: {', '.join(missing)}")
    runs = measured_rates(args.roots)
    if runs.empty:
        print("no run of trpo, qprop-c or ddpg with cpu_time under "
              + ", ".join(map(str, args.roots)), file=sys.stderr)
        return 1
    command = "python -m reproduce.cost_calibration " + " ".join(argv or sys.argv[1:])
    cal = calibration(runs)
    text = render(cal, args.roots, command.strip())
    print(text)
    if args.toml:
        snippet = rates_toml(cal, cpu_model(), command.strip())
        print(snippet or f"# no run of this machine's CPU ({cpu_model()}) under the roots")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
