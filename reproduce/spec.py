"""Configs of the reproduction: hyperparameters, profiles, published numbers -> run specs.

- ``configs/hyperparams.toml``: the paper's hyperparameters per algorithm and domain.
- ``configs/profiles.toml``: named sweep scales (smoke, quick, paper, fig2, fig3), budgets,
  early stopping, and the cost model used for estimates.
- ``published.csv``: every cell of Table 1. Columns: domain, threshold, algorithm (the
  paper's name), algo (our --algo), metric (``max_return`` or ``episodes``), value,
  qualifier, note. ``qualifier`` is ``""`` for a plain number, ``">"`` for a bound the paper
  printed as ">x" (value holds x), ``"N/A"`` for "never crossed" (value empty).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from qprop_tf.envs import action_scale_matters
from qprop_tf.progress import COLUMNS as C
from qprop_tf.progress import PAPER_EPISODE_STEPS

REPRO_DIR = Path(__file__).resolve().parent
REPO_ROOT = REPRO_DIR.parent
CONFIG_DIR = REPRO_DIR / "configs"
PUBLISHED_CSV = REPRO_DIR / "published.csv"

EPISODE_STEPS = PAPER_EPISODE_STEPS
"""The paper's "episode" (its x-axis unit and Table 1's unit) is 1000 env steps."""
PAPER_BUDGET_EPISODES = 30000
"""Table 1's MaxReturn is the best average return within the first 30000 episodes."""
TABLE1_ALGOS: tuple[str, ...] = ("qprop-c", "trpo", "ddpg")
"""Table 1's columns, in the paper's order."""
QUALIFIERS = ("", ">", "N/A")


class SpecError(ValueError):
    """A bad profile, domain, algorithm or override, reported before anything trains."""


@cache
def hyperparams() -> dict[str, Any]:
    with open(CONFIG_DIR / "hyperparams.toml", "rb") as f:
        return tomllib.load(f)


@cache
def profiles_file() -> dict[str, Any]:
    with open(CONFIG_DIR / "profiles.toml", "rb") as f:
        return tomllib.load(f)


def profiles() -> dict[str, dict[str, Any]]:
    return profiles_file()["profiles"]


def domains() -> dict[str, dict[str, Any]]:
    """Paper domain name -> its table (threshold, batch sizes), in Table 1 order."""
    return hyperparams()["domains"]


@cache
def algos() -> dict[str, dict[str, Any]]:
    """Preset name -> its settings; a preset with ``extends = "<preset>"`` starts from that
    preset's settings (resolved the same way) and overrides them with its own."""
    raw = hyperparams()["algos"]

    def resolve(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name in seen:
            raise SpecError(f"hyperparams.toml: presets extend each other in a circle: "
                            f"{' -> '.join((*seen, name))}")
        if name not in raw:
            raise SpecError(f"hyperparams.toml: {seen[-1]!r} extends unknown preset {name!r}")
        own = dict(raw[name])
        parent = own.pop("extends", None)
        return {**(resolve(parent, (*seen, name)) if parent else {}), **own}

    return {name: resolve(name, ()) for name in raw}


def figures() -> dict[str, dict[str, Any]]:
    return hyperparams().get("figures", {})


def threshold(domain: str) -> float:
    return float(domains()[domain]["threshold"])


def base_algo(algo: str) -> str:
    """The qprop_tf --algo behind a run name (``ddpg-r0.1`` -> ``ddpg``)."""
    if algo in algos():
        return str(algos()[algo]["algo"])
    return algo


def metric_for(algo: str) -> str:
    """The progress.csv column Table 1 reads: DDPG's noise-free eval return, else the batch's."""
    return C.eval_return if base_algo(algo) == "ddpg" else C.average_return


@cache
def load_published() -> pd.DataFrame:
    """Table 1 as data (see the module docstring for the columns)."""
    df = pd.read_csv(PUBLISHED_CSV, dtype={"qualifier": str, "note": str},
                     keep_default_na=False, na_values={"value": [""]})
    df["value"] = pd.to_numeric(df["value"], errors="raise")
    bad = set(df["qualifier"]) - set(QUALIFIERS)
    if bad:
        raise SpecError(f"{PUBLISHED_CSV}: unknown qualifier(s) {sorted(bad)}")
    return df


def published_cell(domain: str, algo: str, metric: str) -> tuple[float, str] | None:
    """(value, qualifier) of one Table 1 cell, or None when the paper has no such cell."""
    df = load_published()
    row = df[(df.domain == domain) & (df.algo == algo) & (df.metric == metric)]
    if row.empty:
        return None
    return float(row.value.iloc[0]), str(row.qualifier.iloc[0])


# ---------------------------------------------------------------------- run specs

@dataclass(frozen=True)
class EarlyStop:
    """Stop once crossed and then ``margin`` x crossing steps and ``min_iterations`` later."""

    threshold: float
    metric: str
    margin: float
    min_iterations: int

    def describe(self) -> str:
        return (f"stop {self.margin:.0%} past the first crossing of {self.threshold:g} "
                f"({self.metric}) and at least {self.min_iterations} iterations later")


@dataclass(frozen=True)
class RunSpec:
    domain: str
    algo: str
    seed: int
    base_algo: str
    profile: str
    budget_episodes: float
    threshold: float
    metric: str
    overrides: dict[str, Any] = field(hash=False)
    early_stop: EarlyStop | None = None

    @property
    def key(self) -> str:
        return f"{self.domain}/{self.algo}/seed{self.seed}"

    @property
    def max_steps(self) -> int:
        return int(self.overrides["max_steps"])

    def run_dir(self, results: str | Path) -> Path:
        """``<results>/<profile>/runs/<Domain>/<algo>/seed<k>``: each profile its own tree."""
        return runs_root(results, self.profile) / self.domain / self.algo / f"seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        if d.get("early_stop"):
            d["early_stop"] = EarlyStop(**d["early_stop"])
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        """What must match for a finished run to count as this run (not cosmetic fields).
        ``action_scale`` counts only where the bounds are not [-1, 1] (Humanoid), and a spec
        without it there acted in the env's bounds (every run before the switch existed)."""
        d = self.to_dict()
        d["overrides"] = {k: v for k, v in d["overrides"].items() if k != "progress_bar"}
        if action_scale_matters(self.domain):
            d["overrides"].setdefault("action_scale", "env")
        else:
            d["overrides"].pop("action_scale", None)  # the same env, bit for bit
        d.pop("profile")
        return d


def profile_dir(results: str | Path, profile: str) -> Path:
    """A profile's tree: its runs, table, figures and sweep history."""
    return Path(results) / profile


def runs_root(results: str | Path, profile: str) -> Path:
    return profile_dir(results, profile) / "runs"


def check_profile(name: str) -> dict[str, Any]:
    """The profile's table, or a SpecError naming the valid ones."""
    if name not in profiles():
        raise SpecError(f"unknown profile {name!r}; valid: {', '.join(profiles())}")
    return profiles()[name]


def extra_rows_from(name: str) -> list[str]:
    """The profiles whose runs of algorithms outside Table 1's columns the table of ``name``
    shows as extra rows (profiles.toml ``extra_rows_from``), validated."""
    extra = check_profile(name).get("extra_rows_from", [])
    if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
        raise SpecError(f"profile {name!r}: extra_rows_from must be a list of profile names")
    for other in extra:
        if other not in profiles():
            raise SpecError(f"profile {name!r}: extra_rows_from names unknown profile "
                            f"{other!r}; valid: {', '.join(profiles())}")
        if other == name:
            raise SpecError(f"profile {name!r}: extra_rows_from names the profile itself")
    return list(extra)


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def paper_crossing(domain: str, algo: str) -> float | None:
    """The paper's episodes-to-threshold for a Table 1 cell, None when N/A, '>' or absent."""
    cell = published_cell(domain, algo, "episodes")
    if cell is None or cell[1] != "" or math.isnan(cell[0]):
        return None
    return cell[0]


def paper_uncrossed(domain: str, algo: str) -> bool:
    """True when the paper's run of this cell never crossed within 30000 episodes (its
    Episodes cell is N/A or >x); a variant without a column of its own uses its base algo's."""
    for name in dict.fromkeys((algo, base_algo(algo))):
        cell = published_cell(domain, name, "episodes")
        if cell is not None:
            return cell[1] in ("N/A", ">")
    return False


def uncrossed_cap(profile: dict[str, Any], algo: str) -> float | None:
    """The profile's budget_uncrossed for this algo (or its base algo), None when unset."""
    caps = profile.get("budget_uncrossed", {})
    if not isinstance(caps, dict):
        raise SpecError("budget_uncrossed must be a table of algo = episodes")
    for name in dict.fromkeys((algo, base_algo(algo))):
        if name in caps:
            value = caps[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise SpecError(f"budget_uncrossed.{name} must be a positive number of "
                                f"episodes, not {value!r}")
            return float(value)
    return None


def budget_episodes(profile: dict[str, Any], domain: str, algo: str) -> float:
    """A run's budget in paper episodes by the profile's rule; ``budget_algo`` gives every
    algorithm that algorithm's budget (equal env steps for all, e.g. TRPO next to Q-Prop)."""
    like = profile.get("budget_algo")
    if like is not None:
        from qprop_tf.config import ALGOS

        if like not in algos() and like not in ALGOS:
            raise SpecError(f"budget_algo: unknown algorithm {like!r}")
        algo = like
    rule = profile["budget_episodes"]
    if isinstance(rule, (int, float)):
        return float(rule)
    if rule != "paper-crossing":
        raise SpecError(f"unknown budget_episodes rule {rule!r}")
    cap = float(profile.get("budget_cap", PAPER_BUDGET_EPISODES))
    crossing = paper_crossing(domain, algo)
    if crossing is None and base_algo(algo) != algo:  # a variant: its base algo's cell
        crossing = paper_crossing(domain, base_algo(algo))
    if crossing is None:
        uncrossed = uncrossed_cap(profile, algo) if paper_uncrossed(domain, algo) else None
        return min(cap, uncrossed) if uncrossed is not None else cap
    budget = max(float(profile.get("budget_factor", 1.5)) * crossing,
                 crossing + float(profile.get("budget_min_extra", 0)))
    return float(min(cap, math.ceil(budget / 100) * 100))


def merged_overrides(domain: str, algo: str) -> dict[str, Any]:
    """The hyperparameters of (domain, algo), before the profile and the CLI."""
    hp = hyperparams()
    out: dict[str, Any] = dict(hp.get("common", {}))
    out.update({k: v for k, v in algos().get(algo, {}).items() if k != "algo"})
    dom = domains()[domain]
    if algo in dom.get("batch_size", {}):
        out["batch_size"] = dom["batch_size"][algo]
    out.update(dom.get("overrides", {}).get(algo, {}))
    return out


def first_seed(profile_name: str, override: int | None = None) -> int:
    """The profile's first seed (``first_seed``, default 0; ``override`` wins), validated:
    a profile with ``seeds = N`` runs seeds first_seed .. first_seed + N - 1."""
    value = override if override is not None else check_profile(profile_name).get(
        "first_seed", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"profile {profile_name!r}: first_seed must be an integer >= 0, "
                        f"not {value!r}")
    return value


def selection_choices(path: Path) -> dict[str, list[str]]:
    """A selection file's ``algos`` (domain -> run names), leniently: none when the file is
    absent or unreadable (:func:`selected_algos` is the checked reader)."""
    try:
        return dict(json.loads(path.read_text()).get("algos", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def selected_algos(profile_name: str, results: str | Path | None = None
                   ) -> dict[str, list[str]] | None:
    """Domain -> algorithms for a profile whose algorithms come from a selection file
    (profiles.toml ``algos_from = "<path under the results directory>"``, a JSON file with
    ``{"algos": {"<Domain>": ["<algo>", ...], ...}}``, e.g. written by
    ``python -m reproduce.best_batch select``); None for a profile with a fixed ``algos``."""
    rel = check_profile(profile_name).get("algos_from")
    if rel is None:
        return None
    if not isinstance(rel, str) or not rel:
        raise SpecError(f"profile {profile_name!r}: algos_from must be a path (a string)")
    path = Path(results if results is not None else REPO_ROOT / "results") / rel
    if not path.is_file():
        raise SpecError(f"profile {profile_name!r} takes its algorithms from {path}, which "
                        "does not exist: write it first (for bestbatch-confirm: `python -m "
                        "reproduce.best_batch select`, after the bestbatch sweep), or pass "
                        "--algos")
    try:
        chosen = json.loads(path.read_text())["algos"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"{path}: not a selection file ({exc!r}); expected "
                        '{"algos": {"<Domain>": ["<algo>", ...]}}') from None
    if not isinstance(chosen, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in chosen.values()):
        raise SpecError(f"{path}: \"algos\" must map each domain to a list of algorithms")
    return {str(d): list(v) for d, v in chosen.items()}


def resolve_runs(profile_name: str, domain_list: list[str] | None = None,
                 algo_list: list[str] | None = None, seeds: int | None = None,
                 extra: dict[str, Any] | None = None, first: int | None = None,
                 results: str | Path | None = None) -> list[RunSpec]:
    """Every run of a sweep, validated against qprop_tf's Config (no training, no TF).

    Seeds: ``seeds`` (default: the profile's) from ``first`` (default: its ``first_seed``).
    A profile with ``algos_from`` reads its per-domain algorithms from that file under
    ``results`` (default: the checkout's results/) unless ``algo_list`` is given.
    """
    from qprop_tf.config import ALGOS, Config, load_config
    from qprop_tf.errors import ConfigError

    profile = check_profile(profile_name)
    extra_rows_from(profile_name)  # a bad name is an error before anything trains
    chosen = None if algo_list else selected_algos(profile_name, results)
    doms = domain_list or (list(chosen) if chosen is not None else list(profile["domains"]))
    n_seeds = int(seeds if seeds is not None else profile["seeds"])
    if n_seeds < 1:
        raise SpecError("--seeds must be >= 1")
    seed0 = first_seed(profile_name, first)
    for d in doms:
        if d not in domains():
            raise SpecError(f"unknown domain {d!r}; valid: {', '.join(domains())}")
        if chosen is not None and d not in chosen:
            raise SpecError(f"profile {profile_name!r}: its selection file has no algorithms "
                            f"for {d}; it has {', '.join(chosen) or 'none'}")
    per_domain = {d: algo_list or (chosen[d] if chosen is not None else list(profile["algos"]))
                  for d in doms}
    for a in dict.fromkeys(a for names in per_domain.values() for a in names):
        if a not in algos() and a not in ALGOS:
            raise SpecError(f"unknown algorithm {a!r}; valid: {', '.join(algos())} "
                            f"(or any qprop_tf algo: {', '.join(ALGOS)})")
    specs: list[RunSpec] = []
    for d in doms:
        for a in per_domain[d]:
            budget = budget_episodes(profile, d, a)
            metric = metric_for(a)
            early = None
            if profile.get("early_stop", False):
                early = EarlyStop(threshold(d), metric,
                                  float(profile.get("early_stop_margin", 0.1)),
                                  int(profile.get("early_stop_min_iterations", 3)))
            for seed in range(seed0, seed0 + n_seeds):
                ov = merged_overrides(d, a)
                if action_scale_matters(d):  # recorded where it matters (RunSpec.identity)
                    ov.setdefault("action_scale", Config.action_scale)
                ov["max_steps"] = int(round(budget * EPISODE_STEPS))
                ov.update(profile.get("overrides", {}))
                ov.update(extra or {})
                ov["progress_bar"] = False
                try:
                    cfg = load_config(base_algo(a), d, seed, dict(ov))
                except ConfigError as exc:
                    raise SpecError(f"{d}/{a}/seed{seed}: {exc}") from None
                # Store typed values as JSON would, so a re-resolved spec compares equal.
                typed = {k: _norm(getattr(cfg, k)) for k in ov}
                budget_eff = typed["max_steps"] / EPISODE_STEPS
                specs.append(RunSpec(d, a, seed, base_algo(a), profile_name, budget_eff,
                                     threshold(d), metric, typed, early))
    return specs

