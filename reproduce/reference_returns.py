"""What a policy that learns nothing earns on each Table 1 domain: the floor to read a return
against.

    python -m reproduce.reference_returns [--domains Ant,Humanoid] [--episodes 5]
                                          [--out results/reference_returns]

Per domain, ``episodes`` whole episodes (each to its end or the env's time limit) of two
policies that never learn:

- **zero action**: a = 0 at every step. On Ant-v5 and Humanoid-v5 this earns the healthy
  reward while the body stays up, so a learner's return near it has learned to stand, not
  to move;
- **uniform random**: a ~ U(low, high), the env's action space (seeded).

Episode ``i`` resets with seed ``i`` (and the action space is seeded with ``i``), so the
figures are a deterministic function of the episode count. It writes ``<out>.csv`` (one row
per domain, policy and episode: return and length) and ``<out>.md`` (per domain: mean
[min–max] of each policy, its mean length, and Table 1's threshold), with the command,
commit and versions. ``reproduce.plot`` draws both as grey reference lines on the learning
curves when ``<results>/reference_returns.csv`` exists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.envs import DOMAINS, make_env
from qprop_tf.errors import ConfigError
from qprop_tf.runtime import git_commit, versions
from reproduce.spec import threshold

POLICIES = ("zero action", "uniform random")
CSV_NAME = "reference_returns.csv"


def episode_return(domain: str, policy: str, episode: int) -> tuple[float, int]:
    """Undiscounted return and length of one whole episode: sum_t r_t, t < T (the env's end or
    time limit), under ``policy`` (one of :data:`POLICIES`), reset seed ``episode``."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown reference policy {policy!r}; valid: {', '.join(POLICIES)}")
    env = make_env(domain, episode)  # reset with seed ``episode``, its action space seeded
    try:
        space = env.action_space
        act: Callable[[], np.ndarray] = (
            (lambda: np.zeros(space.shape, dtype=space.dtype)) if policy == POLICIES[0]
            else space.sample)
        total, steps = 0.0, 0
        while True:
            _, reward, terminated, truncated, _ = env.step(act())
            total += float(reward)
            steps += 1
            if terminated or truncated:
                return total, steps
    finally:
        env.close()


def reference_returns(domains: Sequence[str], episodes: int,
                      progress: bool = True) -> pd.DataFrame:
    """One row per (domain, policy, episode): return, length."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise ConfigError(f"unknown domain(s) {', '.join(unknown)}; valid: {', '.join(DOMAINS)}")
    from tqdm import tqdm

    jobs = [(d, p, e) for d in domains for p in POLICIES for e in range(episodes)]
    rows = []
    for d, p, e in tqdm(jobs, desc="reference returns", unit="episode", disable=not progress):
        ret, length = episode_return(d, p, e)
        rows.append({"domain": d, "policy": p, "episode": e, "return": ret, "length": length})
    return pd.DataFrame(rows, columns=["domain", "policy", "episode", "return", "length"])


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per (domain, policy): mean, min and max return, mean length, episodes."""
    g = df.groupby(["domain", "policy"], sort=False)
    return pd.DataFrame({"mean": g["return"].mean(), "min": g["return"].min(),
                         "max": g["return"].max(), "length": g["length"].mean(),
                         "episodes": g.size()}).reset_index()


def render(df: pd.DataFrame, command: str) -> str:
    """The markdown report: one row per domain, both policies side by side."""
    s = summary(df)
    v = versions()
    lines = ["# What a policy that learns nothing earns", "",
             f"Command: `{command}`; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit "
             f"{git_commit()[:7]}; gymnasium {v['gymnasium']}, mujoco {v['mujoco']}.", "",
             "Undiscounted return of whole episodes (to the env's end or time limit), "
             "episode i reset with seed i: mean [min–max], and the mean length in steps.", "",
             "| Domain | env | Table 1 threshold | " + " | ".join(POLICIES) + " |",
             "|---|---|---|" + "---|" * len(POLICIES)]
    for d in dict.fromkeys(s["domain"]):
        cells = []
        for p in POLICIES:
            r = s[(s["domain"] == d) & (s["policy"] == p)].iloc[0]
            cells.append(f"{r['mean']:,.1f} [{r['min']:,.1f}–{r['max']:,.1f}] "
                         f"({r['length']:,.0f} steps, {r['episodes']} episodes)")
        lines.append(f"| {d} | {DOMAINS[d]} | {threshold(d):g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_reference(results: Path) -> pd.DataFrame | None:
    """``<results>/reference_returns.csv`` summarised (:func:`summary`), or None if absent."""
    path = Path(results) / CSV_NAME
    if not path.is_file():
        return None
    return summary(pd.read_csv(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default=",".join(DOMAINS),
                        help="comma-separated paper names (default: all seven)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per policy")
    parser.add_argument("--out", type=Path, default=Path("results") / "reference_returns",
                        help="writes <out>.csv and <out>.md")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        df = reference_returns([d.strip() for d in args.domains.split(",") if d.strip()],
                               args.episodes, progress=not args.no_progress)
    except ConfigError as e:
        parser.error(str(e))
    command = ("python -m reproduce.reference_returns " + " ".join(argv or sys.argv[1:])).strip()
    text = render(df, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.6f")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
