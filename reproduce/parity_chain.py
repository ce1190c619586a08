"""The ablation chain of ``reproduce.parity`` as runs: reproduce/configs/parity.toml read,
each row's cumulative overrides, the rows a domain runs, and one command per (domain, row,
seed) with its run directory, ours (``python -m qprop_tf train``) and sb3-contrib's
(reproduce/sb3_trpo.py under the peer interpreter). Nothing runs here.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.spec import CONFIG_DIR, REPRO_DIR

PARITY_TOML = CONFIG_DIR / "parity.toml"
SB3_SCRIPT = REPRO_DIR / "sb3_trpo.py"
SB3 = "sb3"
SB3_LABEL = "sb3-contrib's TRPO (reproduce/sb3_trpo.py; its call above)"


class ParityError(ValueError):
    """A bad domain or row name, or no peer interpreter: reported before anything runs."""


def load_config(path: Path = PARITY_TOML) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def chain_names(cfg: dict[str, Any]) -> list[str]:
    return [row["name"] for row in cfg["chain"]]


def cumulative_sets(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Row name -> its overrides: base.set, then the ``set`` of chain rows 1..k in order.

    A row with ``single = true`` is one factor alone: base.set plus its own ``set`` only,
    and it does not carry into the rows after it.
    """
    base = dict(cfg["base"].get("set", {}))
    merged = dict(base)
    out: dict[str, dict[str, Any]] = {}
    for row in cfg["chain"]:
        if row.get("single", False):
            out[row["name"]] = {**base, **row.get("set", {})}
            continue
        merged = {**merged, **row.get("set", {})}
        out[row["name"]] = merged
    return out


def last_cumulative_row(cfg: dict[str, Any]) -> str:
    """The end of the chain proper (single-factor rows aside)."""
    return [row["name"] for row in cfg["chain"] if not row.get("single", False)][-1]


def _known(kind: str, names: list[str], valid: list[str]) -> list[str]:
    bad = [n for n in names if n not in valid]
    if bad:
        raise ParityError(f"unknown {kind} {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")
    return names


def select(cfg: dict[str, Any], domains: list[str] | None = None,
           rows: list[str] | None = None) -> dict[str, list[str]]:
    """Domain -> its chain rows to run, in chain order (the config's ``rows`` cut to ``rows``)."""
    chain = chain_names(cfg)
    wanted = _known("row", rows or chain, chain)
    out: dict[str, list[str]] = {}
    for d in _known("domain", domains or list(cfg["domains"]), list(cfg["domains"])):
        listed = cfg["domains"][d].get("rows", "all")
        listed = chain if listed == "all" else _known(f"row in [domains.{d}]", list(listed), chain)
        out[d] = [r for r in chain if r in listed and r in wanted]
    return out


def set_value(value: Any) -> str:
    """A config value as ``--set`` takes it: true/false, comma-joined sequences."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def run_dir(results: Path, domain: str, row: str, seed: int) -> Path:
    return Path(results) / "parity" / domain / row / f"seed{seed}"


def ours_command(cfg: dict[str, Any], domain: str, row: str, seed: int, steps: int,
                 out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "qprop_tf", "train", "--algo", cfg["base"]["algo"],
           "--env", domain, "--seed", str(seed), "--max-steps", str(steps), "--no-progress",
           "--out", str(out)]
    for key, value in cumulative_sets(cfg)[row].items():
        cmd += ["--set", f"{key}={set_value(value)}"]
    return cmd


def sb3_command(peer_python: str | Path, env_id: str, seed: int, steps: int,
                out: Path) -> list[str]:
    return [str(peer_python), "-I", str(SB3_SCRIPT), "--env", env_id, "--seed", str(seed),
            "--steps", str(steps), "--out", str(out)]


@dataclass(frozen=True)
class Run:
    domain: str
    row: str  # a chain row's name, or SB3
    seed: int
    out: Path
    cmd: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.row}/seed{self.seed}"


def plan_runs(cfg: dict[str, Any], selection: dict[str, list[str]], results: Path, seeds: int,
              steps: int, peer_python: str | Path, sb3: bool = True) -> list[Run]:
    """Every run of the selection, seed-major: all rows of seed 0, then of seed 1, ..."""
    results = Path(results).absolute()
    runs: list[Run] = []
    for seed in range(seeds):
        for domain, rows in selection.items():
            for row in rows:
                out = run_dir(results, domain, row, seed)
                runs.append(Run(domain, row, seed, out,
                                tuple(ours_command(cfg, domain, row, seed, steps, out))))
            if sb3:
                out = run_dir(results, domain, SB3, seed)
                env_id = cfg["domains"][domain]["env_id"]
                runs.append(Run(domain, SB3, seed, out,
                                tuple(sb3_command(peer_python, env_id, seed, steps, out))))
    return runs
