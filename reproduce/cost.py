"""The cost model: estimated env steps per second and hours of one run (``profiles.toml``'s
``[rates]``, ``[rates_cpu]`` and ``[cost]``), for ``reproduce.sweep --dry-run`` and the
campaign's ledger.

``[rates.<family>]`` holds one rate per domain (and a ``default``). ``[rates_cpu."<CPU>".<family>]``
holds the rates measured on one CPU (its ``/proc/cpuinfo`` model name, as a run's
``config.json`` records it in ``machines[].cpu``; ``python -m reproduce.cost_calibration
--toml`` writes the table). On that CPU its entries replace ``[rates]``'s for their domains;
a domain it lacks, and any other CPU, takes ``[rates]``'s."""

from __future__ import annotations

from functools import cache

from reproduce.spec import RunSpec, profiles_file


@cache
def this_cpu() -> str:
    """This machine's CPU model name (``qprop_tf.runtime.cpu_model``), read once."""
    from qprop_tf.runtime import cpu_model

    return cpu_model()


def family(base_algo: str) -> str:
    """The rates table of an algorithm: every Q-Prop variant shares ``qprop``'s."""
    from qprop_tf.config import QPROP_ALGOS

    return "qprop" if base_algo in QPROP_ALGOS else base_algo


def rate(base_algo: str, domain: str, cpu: str | None = None) -> float:
    """Estimated whole-loop env steps/s of a ``base_algo`` run on ``domain`` on one core of
    ``cpu`` (default: this machine's): ``[rates_cpu."<cpu>".<family>]`` where it has the
    domain, else ``[rates.<family>]``'s domain entry, else its ``default``."""
    name = family(base_algo)
    model = profiles_file()
    measured = model.get("rates_cpu", {}).get(this_cpu() if cpu is None else cpu, {})
    if domain in measured.get(name, {}):
        return float(measured[name][domain])
    table = model.get("rates", {}).get(name, {})
    return float(table.get(domain, table.get("default", 5000)))


def rate_for(spec: RunSpec) -> float:
    """Estimated whole-loop env steps/s of one run on one core of this machine."""
    return rate(spec.base_algo, spec.domain)


def startup_hours() -> float:
    """A run's start-up (process, TF import, tracing) in hours (profiles.toml [cost])."""
    return float(profiles_file().get("cost", {}).get("startup_seconds", 8)) / 3600


def run_hours(spec: RunSpec) -> float:
    """Estimated wall hours of one run on one core at full budget (no early stop)."""
    return spec.max_steps / rate_for(spec) / 3600 + startup_hours()
