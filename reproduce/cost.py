"""The cost model: estimated env steps per second and hours of one run (``profiles.toml``'s
``[rates]`` and ``[cost]``), for ``reproduce.sweep --dry-run`` and the campaign's ledger."""

from __future__ import annotations

from reproduce.spec import RunSpec, profiles_file


def rate(base_algo: str, domain: str) -> float:
    """Estimated whole-loop env steps/s of a ``base_algo`` run on ``domain`` on one core
    (profiles.toml [rates]: every Q-Prop variant shares the ``qprop`` table)."""
    from qprop_tf.config import QPROP_ALGOS

    rates = profiles_file().get("rates", {})
    family = "qprop" if base_algo in QPROP_ALGOS else base_algo
    table = rates.get(family, {})
    return float(table.get(domain, table.get("default", 5000)))


def rate_for(spec: RunSpec) -> float:
    """Estimated whole-loop env steps/s of one run on one core (profiles.toml [rates])."""
    return rate(spec.base_algo, spec.domain)


def startup_hours() -> float:
    """A run's start-up (process, TF import, tracing) in hours (profiles.toml [cost])."""
    return float(profiles_file().get("cost", {}).get("startup_seconds", 8)) / 3600


def run_hours(spec: RunSpec) -> float:
    """Estimated wall hours of one run on one core at full budget (no early stop)."""
    return spec.max_steps / rate_for(spec) / 3600 + startup_hours()

