"""Read the run directories of a results tree, robustly: a bad file is reported, not fatal.

Each profile has its own tree, ``<results>/<profile>/runs/<Domain>/<algo>/seed<k>``
(``reproduce.spec.runs_root``). ``load_runs`` reads one profile's tree; ``load_table_runs``
adds the runs its table shows as extra rows (profiles.toml ``extra_rows_from``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qprop_tf.progress import COLUMNS as C
from qprop_tf.rundir import DONE
from reproduce.runner import LOG, SPEC, read_json
from reproduce.spec import (
    EPISODE_STEPS,
    TABLE1_ALGOS,
    SpecError,
    base_algo,
    check_profile,
    domains,
    extra_rows_from,
    metric_for,
    profile_dir,
    profiles,
    runs_root,
)


@dataclass
class Run:
    domain: str
    algo: str
    seed: int
    path: Path
    progress: pd.DataFrame
    metric: str
    finished: bool
    done: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    profile: str = ""  # the profile whose tree holds the run
    nonfinite: str = ""  # no DONE: training stopped on a NonFiniteError (this line of its log)

    @property
    def recorded_profile(self) -> str | None:
        """The profile its spec.json names (the sweep that made it), if any."""
        return (self.spec or {}).get("profile")

    @property
    def budget_steps(self) -> int | None:
        for src in (self.done, self.spec and self.spec.get("overrides"),
                    self.config and self.config.get("config")):
            if src and src.get("max_steps") is not None:
                return int(src["max_steps"])
        return None

    @property
    def stopped_early(self) -> bool:
        return bool(self.done and self.done.get("stopped") == "early")

    @property
    def base_algo(self) -> str:
        if self.config and "config" in self.config:
            return str(self.config["config"].get("algo", base_algo(self.algo)))
        return base_algo(self.algo)


def log_status(run_dir: Path) -> tuple[str, str]:
    """("diverged" | "failed" | "unfinished", detail) from the last attempt in log.txt."""
    path = run_dir / LOG
    text = path.read_text(errors="replace") if path.is_file() else ""
    last = re.split(r"^\[reproduce\] \S+ on \S+ pid \d+", text, flags=re.M)[-1]
    lines = [ln for ln in last.splitlines() if "NonFiniteError" in ln]
    if lines:
        return "diverged", lines[-1].strip()[:200]
    at = last.rfind("Traceback (most recent call last):")
    if at >= 0:
        tail = last[at:].splitlines()[1:]
        exc = next((ln for ln in tail if ln and not ln[0].isspace()), "unknown exception")
        if not any(s in exc for s in ("RunInterrupted", "KeyboardInterrupt")):
            return "failed", exc.strip()[:200]
        return "unfinished", "interrupted, resumable: " + exc.strip()[:160]
    return "unfinished", "no DONE (running, or stopped without a traceback)"


def stopped_nonfinite(run_dir: Path) -> str:
    """The NonFiniteError line a run without DONE stopped on (its last attempt), else "".
    Such a run is a result, not a gap: it is never resumed (it would only fail again), it is
    collected like a finished run, and it counts as not crossed after it."""
    if (run_dir / DONE).is_file():
        return ""
    status, detail = log_status(run_dir)
    return detail if status == "diverged" else ""


@dataclass
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Collection:
    runs: list[Run] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unfinished: list[Path] = field(default_factory=list)

    def select(self, domain: str, algo: str) -> list[Run]:
        return [r for r in self.runs if r.domain == domain and r.algo == algo]

    def extend(self, other: Collection, keep: Callable[[str], bool]) -> None:
        """Add ``other``'s runs, problems and unfinished runs whose algo passes ``keep``; a
        run whose (domain, algo, seed) is already here is not added again (the same run
        linked into two profiles' trees, e.g. ``bestbatch``'s links to ``ablation``)."""
        have = {(r.domain, r.algo, r.seed) for r in self.runs}
        self.runs += [r for r in other.runs
                      if keep(r.algo) and (r.domain, r.algo, r.seed) not in have]
        self.problems += [p for p in other.problems if keep(p.path.parent.parent.name)]
        self.unfinished += [u for u in other.unfinished if keep(u.parent.name)]


def read_progress(path: Path, metric: str) -> pd.DataFrame:
    """A validated progress.csv; raises ValueError saying what is wrong with it."""
    if not path.is_file():
        raise ValueError("missing")
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    raw = path.read_bytes()
    if not raw.endswith(b"\n"):
        raise ValueError("truncated: the last line is incomplete")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable CSV ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0]})") from None
    if df.empty:
        raise ValueError("no data rows")
    need = [C.env_steps, metric]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    for col in [*need, C.paper_episodes, C.real_episodes]:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    bad = df[need].isna().any(axis=1)
    if C.batch_episodes in df.columns:  # fixed-length rollouts: a batch may end no episode
        no_episode = pd.to_numeric(df[C.batch_episodes], errors="coerce") == 0
        bad = df[C.env_steps].isna() | (df[metric].isna() & ~no_episode)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"non-numeric or empty {'/'.join(need)} in data row {first + 1} "
                         "(corrupt or truncated)")
    if not df[C.env_steps].is_monotonic_increasing:
        raise ValueError("env_steps is not increasing (corrupt or two runs mixed)")
    if C.paper_episodes not in df.columns or df[C.paper_episodes].isna().any():
        df[C.paper_episodes] = df[C.env_steps] / EPISODE_STEPS
    if C.real_episodes not in df.columns:
        df[C.real_episodes] = np.nan
    return df


def load_runs(results: str | Path, profile: str, include_unfinished: bool = False,
              tree: str = "runs") -> Collection:
    """Every ``<profile>/<tree>/<Domain>/<algo>/seed<k>`` under ``results``.

    Runs without DONE are listed in ``unfinished`` and left out unless
    ``include_unfinished``, except a run whose training stopped on a NonFiniteError
    (:func:`stopped_nonfinite`): that is a result, read like a finished run, with
    ``Run.nonfinite`` naming the error. An unreadable progress.csv becomes a Problem and is
    skipped.
    ``tree="inflight"``: the progress so far of a campaign's unfinished runs
    (``make campaign-collect``), which no table counts.
    """
    out = Collection()
    root = profile_dir(results, profile) / tree
    if not root.is_dir():
        return out
    for seed_dir in sorted(root.glob("*/*/seed*")):
        if not seed_dir.is_dir():
            continue
        domain, algo = seed_dir.parent.parent.name, seed_dir.parent.name
        try:
            seed = int(seed_dir.name.removeprefix("seed"))
        except ValueError:
            continue
        finished = (seed_dir / DONE).is_file()
        nonfinite = stopped_nonfinite(seed_dir)
        if not (finished or nonfinite or include_unfinished):
            out.unfinished.append(seed_dir)
            continue
        config = read_json(seed_dir / "config.json")
        algo_base = (config or {}).get("config", {}).get("algo") or base_algo(algo)
        metric = C.eval_return if algo_base == "ddpg" else metric_for(algo)
        progress_path = seed_dir / "progress.csv"
        try:
            df = read_progress(progress_path, metric)
        except ValueError as exc:
            out.problems.append(Problem(progress_path, str(exc)))
            continue
        out.runs.append(Run(domain, algo, seed, seed_dir, df, metric, finished,
                            read_json(seed_dir / DONE), read_json(seed_dir / SPEC), config,
                            profile, nonfinite))
    return out


def load_table_runs(results: str | Path, profile: str, include_unfinished: bool = False
                    ) -> Collection:
    """The runs of ``profile``'s table and figures: its own tree, plus the runs of algorithms
    outside Table 1's columns from the profiles its ``extra_rows_from`` names. A profile with
    ``row_tag = true`` gives every run, as ``<algo>@<profile>`` (``algo_names.paper_name``
    names the rows): Table 1's algorithms run another way (``humanoid-env``)."""
    check_profile(profile)
    out = load_runs(results, profile, include_unfinished)
    for other in extra_rows_from(profile):
        more = load_runs(results, other, include_unfinished)
        if check_profile(other).get("row_tag", False):  # Table 1's algorithms, another way
            more.runs = [replace(r, algo=f"{r.algo}@{other}") for r in more.runs]
        out.extend(more, lambda algo: algo not in TABLE1_ALGOS)
    return out


def find_profile(results: str | Path, algo_names: list[str]) -> str:
    """The one profile whose tree holds run directories of any of ``algo_names``."""
    found = [p for p in profiles()
             if any((runs_root(results, p) / d / a).is_dir() for d in domains()
                    for a in algo_names)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SpecError(f"no runs of {' or '.join(algo_names)} under "
                        f"{Path(results)}/<profile>/runs; give --profile")
    raise SpecError(f"runs of {' or '.join(algo_names)} in several profiles' trees "
                    f"({', '.join(found)}); choose one with --profile")
