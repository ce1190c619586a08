"""Which algorithms a config field applies to, so that an explicit ``--set`` of a field the
chosen ``--algo`` never reads is an error, not silently ignored.

Only the command line's own ``--set`` keys are checked, and only where they change a
default: a profile's overrides apply to every algorithm of its sweep (``min_replay`` for
TRPO beside Q-Prop), where a field one of them ignores is expected. Fields not listed here
apply to every algorithm.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from qprop_tf.config import (
    ALGOS,
    ON_POLICY_ALGOS,
    QPROP_ALGOS,
    Config,
    policy_optimizer_name,
)

_TRPO_STEP = tuple(a for a in ON_POLICY_ALGOS if policy_optimizer_name(a) == "trpo")
_VPG_STEP = tuple(a for a in ON_POLICY_ALGOS if policy_optimizer_name(a) == "vpg")

SCOPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # name: (whose, the algos that read them, the fields)
    "ddpg": ("DDPG's", ("ddpg",),
             ("actor_hidden", "actor_lr", "ou_theta", "ou_sigma", "eval_steps", "ddpg_chunk")),
    "critic": ("the critic's (Q-Prop, DDPG)", (*QPROP_ALGOS, "ddpg"),
               ("qf_hidden", "qf_lr", "qf_batch_size", "qf_tau", "replay_size", "min_replay",
                "reward_scale")),
    "qprop": ("Q-Prop's", tuple(QPROP_ALGOS),
              ("qf_updates_ratio", "fit_critic_first", "critic_clip_actions",
               "scale_analytic")),
    "trpo": ("the TRPO step's", _TRPO_STEP,
             ("max_kl", "cg_iters", "cg_damping", "backtrack_ratio", "max_backtracks",
              "kl_per_action_dim")),
    "vpg": ("the VPG step's", _VPG_STEP, ("vpg_lr",)),
    "onpolicy": ("the on-policy learners' (TRPO, VPG, Q-Prop)", ON_POLICY_ALGOS,
                 ("gae_lambda", "center_advantages", "fit_baseline_first", "baseline",
                  "baseline_reg", "vf_hidden", "vf_lr", "vf_updates", "vf_minibatch",
                  "vf_epochs", "vf_normalize_targets", "vf_target", "init_std",
                  "policy_hidden")),
}


def _defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Config) if f.default is not MISSING}


def inapplicable(cfg: Config, keys: list[str]) -> list[str]:
    """One message per key that ``cfg.algo`` never reads and that ``cfg`` sets to other than
    its default (empty: every key applies, or changes nothing). A value equal to the default
    is let through: scripts pass an algorithm's whole merged config, common fields included."""
    if cfg.algo not in ALGOS:
        return []  # Config.validate names the valid algos
    defaults = _defaults()
    out = []
    for key in keys:
        for whose, algos, scoped in SCOPES.values():
            if (key in scoped and cfg.algo not in algos
                    and getattr(cfg, key) != defaults.get(key)):
                out.append(f"--set {key}: {whose}; --algo {cfg.algo} does not read it "
                           f"(used by: {', '.join(algos)})")
    return out
