"""Typed run configuration, with ``key=value`` overrides that are checked before training.

Every hyperparameter a run uses lives in :class:`Config`. Defaults are the authors' values,
as their released code (rllabplusplus) sets them: ``sandbox/rocky/tf/launchers/
launcher_utils.py`` and ``launcher_stub_utils.py`` (batch 5000, gamma 0.99, GAE lambda 0.97,
TRPO step size = max KL 0.01, a 100-50-25 tanh Gaussian policy with rllab's initial std 1,
the linear feature baseline, the critic's and DDPG's settings) and
``sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py`` (CG 10 iterations with
damping 1e-5, backtracking 0.8^k for at most 15 steps).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from qprop_tf.envs import ACTION_SCALES, action_scale_matters, resolve_env_id
from qprop_tf.errors import ConfigError

ETA_RULES = ("ones", "conservative", "aggressive", "adaptive")
CRITIC_LOSSES = ("mse", "huber")
"""Q-Prop's TD loss (config field ``critic_loss``): the authors' squared error, or Huber."""
TARGET_POLICIES = ("current", "lagged")
"""The bootstrap policy of Q-Prop's TD target (``critic_target_policy``): the current policy
mean (authors) or a Polyak-lagged copy of it (as DDPG's target actor)."""
"""Q-Prop's eta rules (:func:`qprop_tf.qprop.compute_eta`); the config field ``eta``."""

QPROP_ALGOS: dict[str, tuple[str, str]] = {
    # --algo: (policy optimiser, its preset eta rule; ``--set eta=...`` picks another)
    "qprop": ("trpo", "ones"),
    "qprop-c": ("trpo", "conservative"),
    "qprop-a": ("trpo", "aggressive"),
    "qprop-adaptive": ("trpo", "adaptive"),
    "vqprop": ("vpg", "ones"),
    "vqprop-c": ("vpg", "conservative"),
    "vqprop-a": ("vpg", "aggressive"),
    "vqprop-adaptive": ("vpg", "adaptive"),
}
ON_POLICY_ALGOS = ("trpo", "vpg", *QPROP_ALGOS)
OFF_POLICY_ALGOS = ("ddpg",)
ALGOS = (*ON_POLICY_ALGOS, *OFF_POLICY_ALGOS)


def policy_optimizer_name(algo: str) -> str:
    """'trpo' or 'vpg': the on-policy learner an algorithm is built on."""
    return QPROP_ALGOS[algo][0] if algo in QPROP_ALGOS else algo


def eta_preset(algo: str) -> str:
    """The eta rule an algo name stands for ("" for the algos without a critic)."""
    return QPROP_ALGOS[algo][1] if algo in QPROP_ALGOS else ""


BASELINES = ("linear", "mlp")
VF_TARGETS = ("mc", "lambda")
INITS = ("glorot", "orthogonal")
ROLLOUTS = ("paths", "fixed")
IGNORED_CONFIG_KEYS = ("out", "progress_bar", "checkpoint_minutes")
"""Config keys that may differ between a run and its resumption (they change no result)."""


@dataclass
class Config:
    # what to run
    algo: str = "trpo"
    env: str = "Hopper"
    seed: int = 0
    # budget and batch
    batch_size: int = 5000
    max_steps: int = 1_000_000
    n_envs: int = 1
    # returns and advantages
    gamma: float = 0.99
    gae_lambda: float = 0.97
    bootstrap_truncation: bool = True
    # "unit" (authors'): the agent acts in [-1, 1]^d, mapped linearly onto the env's bounds,
    # as rllab's normalize wrapper in the authors' launcher does; "env": in the env's own
    # bounds (our first Humanoid runs). The same on every domain but Humanoid (bounds +-0.4;
    # README, "Deviations")
    action_scale: str = "unit"
    # "paths": whole episodes until the batch holds >= batch_size steps (authors, rllab);
    # "fixed": exactly batch_size steps, episodes continue across batches and the piece cut
    # at the batch's end is bootstrapped with V (sb3, OpenAI baselines)
    rollout: str = "paths"
    center_advantages: bool = True
    fit_baseline_first: bool = False
    # baseline for GAE
    baseline: str = "linear"
    baseline_reg: float = 1e-5
    vf_hidden: tuple[int, ...] = (64, 64)
    vf_lr: float = 1e-3
    vf_updates: int = 100
    vf_minibatch: int = 256
    vf_epochs: int = 0  # > 0: that many passes of shuffled minibatches (sb3: 10 of 128)
    vf_normalize_targets: bool = True  # standardise the targets with each batch's mean/std
    vf_target: str = "mc"  # "mc": discounted returns; "lambda": A_GAE + V (sb3)
    # policy
    policy_hidden: tuple[int, ...] = (100, 50, 25)
    init_std: float = 1.0
    # "glorot": Keras' Glorot-uniform (authors); "orthogonal": gain sqrt(2) on hidden layers,
    # 0.01 on the policy mean's output, 1 on the value output (sb3, OpenAI baselines)
    init: str = "glorot"
    # TRPO
    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 1e-5
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15
    # True: the KL in the Fisher matrix and the line search is averaged over the action
    # dimensions, as sb3-contrib's TRPO computes it (true mean KL bound = act_dim * max_kl)
    kl_per_action_dim: bool = False
    # VPG
    vpg_lr: float = 1e-3
    # Q-Prop critic (the launcher's qf_* flags and get_algo: 100-100 ReLU, lr 1e-3,
    # minibatch 64, replay 1e6, fitting from 1000 transitions)
    qf_hidden: tuple[int, ...] = (100, 100)
    qf_lr: float = 1e-3
    qf_batch_size: int = 64
    qf_tau: float = 1e-3
    qf_updates_ratio: float = 1.0
    replay_size: int = 1_000_000
    min_replay: int = 1000
    fit_critic_first: bool = False
    # eta rule (the authors' qprop_eta_option): ones | conservative | aggressive | adaptive;
    # "" = the algo's preset (qprop-c: conservative, ...), set by validate()
    eta: str = ""
    critic_clip_actions: bool = False  # True: the critic learns Q(s, clip(a)); authors: False
    # True: divide the analytic term by the std the learning signal is standardised by, so
    # both terms of the Q-Prop gradient keep their relative scale; authors: False
    scale_analytic: bool = False
    # Critic stability switches (issue 14, ours; the defaults are the authors' critic). They
    # change the critic's fitting only, never A_bar's expansion point mu(s):
    critic_target_clip: bool = False  # True: y bootstraps at clip(mu(s'), low, high)
    critic_loss: str = "mse"  # "huber": Huber TD loss with delta critic_huber_delta
    critic_huber_delta: float = 1.0
    critic_grad_clip: float = 0.0  # > 0: clip the TD gradient's global norm to this
    critic_target_policy: str = "current"  # "lagged": Polyak copy of the policy (tau qf_tau)
    critic_xla: str = "auto"
    # DDPG (§5.2; the launcher's get_algo, sandbox/rocky/tf/algos/ddpg.py and
    # exploration_strategies/ou_strategy.py); shares qf_*, replay_size, min_replay with Q-Prop.
    # An "epoch" is batch_size env steps, followed by a noise-free evaluation.
    actor_hidden: tuple[int, ...] = (100, 50, 25)
    actor_lr: float = 1e-3
    ou_theta: float = 0.15
    ou_sigma: float = 0.3
    # the critic's reward scale (the authors' scale_reward), DDPG's and Q-Prop's: the replay
    # stores reward_scale * r; Q-Prop divides the critic's Q back in A_bar and the analytic term
    reward_scale: float = 1.0
    eval_steps: int = 10000
    ddpg_chunk: int = 16
    # runtime
    tf_threads: int = 1
    checkpoint_minutes: float = 5.0  # 0: a checkpoint after every iteration (epoch)
    progress_bar: bool = True
    out: str = ""

    # ------------------------------------------------------------------ validation
    def validate(self) -> Config:
        """Raise :class:`ConfigError` on any value that cannot run; fill in ``eta`` from the
        algo's preset when it is not given; return self."""
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algo {self.algo!r}; valid: {', '.join(ALGOS)}")
        resolve_env_id(self.env)  # raises with the list of valid names
        _positive(self, "batch_size", "max_steps", "n_envs", "cg_iters", "max_backtracks",
                  "tf_threads", "vf_updates", "vf_minibatch")
        _positive(self, "init_std", "max_kl", "vpg_lr", "vf_lr", "qf_lr", "qf_batch_size",
                  "replay_size")
        if not 0.0 < self.qf_tau <= 1.0:
            raise ConfigError(f"qf_tau must be in (0, 1], got {self.qf_tau}")
        _positive(self, "actor_lr", "eval_steps", "ddpg_chunk", "reward_scale")
        if self.ou_theta < 0 or self.ou_sigma < 0:
            raise ConfigError("ou_theta and ou_sigma must be >= 0")
        if not self.actor_hidden or any(h <= 0 for h in self.actor_hidden):
            raise ConfigError(f"actor_hidden must be positive sizes, got {self.actor_hidden}")
        if self.critic_xla not in ("auto", "true", "false"):
            raise ConfigError(f"critic_xla must be auto, true or false, got {self.critic_xla!r}")
        if not self.checkpoint_minutes >= 0:
            raise ConfigError(f"checkpoint_minutes must be >= 0, got {self.checkpoint_minutes}")
        if self.qf_updates_ratio < 0 or self.min_replay < 0:
            raise ConfigError("qf_updates_ratio and min_replay must be >= 0")
        if len(self.qf_hidden) < 2 or any(h <= 0 for h in self.qf_hidden):
            raise ConfigError(f"qf_hidden needs >= 2 positive sizes (the action joins at the "
                              f"second layer), got {self.qf_hidden}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if not 0.0 < self.backtrack_ratio < 1.0:
            raise ConfigError(f"backtrack_ratio must be in (0, 1), got {self.backtrack_ratio}")
        if self.cg_damping < 0 or self.baseline_reg < 0:
            raise ConfigError("cg_damping and baseline_reg must be >= 0")
        if self.baseline not in BASELINES:
            raise ConfigError(f"unknown baseline {self.baseline!r}; valid: {', '.join(BASELINES)}")
        for name, valid in (("vf_target", VF_TARGETS), ("init", INITS),
                            ("rollout", ROLLOUTS), ("action_scale", ACTION_SCALES)):
            if getattr(self, name) not in valid:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; valid: "
                                  f"{', '.join(valid)}")
        if self.vf_epochs < 0:
            raise ConfigError(f"vf_epochs must be >= 0, got {self.vf_epochs}")
        if not self.eta:
            self.eta = eta_preset(self.algo)
        if self.algo not in QPROP_ALGOS and self.eta:
            raise ConfigError(f"eta is the rule of Q-Prop's control variate; algo {self.algo} "
                              f"has none (eta={self.eta!r})")
        if self.algo in QPROP_ALGOS and self.eta not in ETA_RULES:
            raise ConfigError(f"unknown eta {self.eta!r}; valid: {', '.join(ETA_RULES)}")
        self._validate_critic_switches()
        if self.rollout == "fixed" and self.algo == "ddpg":
            raise ConfigError("rollout=fixed is for the on-policy algos (ddpg steps on its own)")
        if not self.policy_hidden or any(h <= 0 for h in self.policy_hidden):
            raise ConfigError(f"policy_hidden must be positive sizes, got {self.policy_hidden}")
        if not self.vf_hidden or any(h <= 0 for h in self.vf_hidden):
            raise ConfigError(f"vf_hidden must be positive sizes, got {self.vf_hidden}")
        return self

    def _validate_critic_switches(self) -> None:
        if self.critic_loss not in CRITIC_LOSSES:
            raise ConfigError(f"unknown critic_loss {self.critic_loss!r}; valid: "
                              f"{', '.join(CRITIC_LOSSES)}")
        if self.critic_target_policy not in TARGET_POLICIES:
            raise ConfigError(f"unknown critic_target_policy {self.critic_target_policy!r}; "
                              f"valid: {', '.join(TARGET_POLICIES)}")
        if not self.critic_huber_delta > 0:
            raise ConfigError(f"critic_huber_delta must be > 0, got {self.critic_huber_delta}")
        if not self.critic_grad_clip >= 0:
            raise ConfigError(f"critic_grad_clip must be >= 0 (0: off), got "
                              f"{self.critic_grad_clip}")
        changed = [k for k in ("critic_target_clip", "critic_loss", "critic_huber_delta",
                               "critic_grad_clip", "critic_target_policy")
                   if getattr(self, k) != getattr(Config, k)]
        if changed and self.algo not in QPROP_ALGOS:
            raise ConfigError(f"{', '.join(changed)}: switches of Q-Prop's critic; algo "
                              f"{self.algo} has none (ddpg's critic is the authors')")
        if self.critic_huber_delta != Config.critic_huber_delta and self.critic_loss != "huber":
            raise ConfigError("critic_huber_delta is used only with critic_loss=huber")

    def use_critic_xla(self, obs_dim: int) -> bool:
        """XLA for the critic loop: on, unless ``auto`` and the replay's observations alone
        need >= 2.5 GiB, which with TF, the models and XLA's compiler (~80-150 MB) would take
        a run past its 4 GiB memory budget. Every paper domain is under it (Humanoid, the
        largest: 1M x 348 float32 = 1.4 GB), so XLA is on everywhere by default; without it
        the critic is about 1/3 slower (``make bench``: reproduce/bench/xla_loop.py)."""
        if self.critic_xla != "auto":
            return self.critic_xla == "true"
        return self.replay_size * obs_dim * 4 < 2.5 * 2**30

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def differences(self, old: dict[str, Any]) -> list[str]:
        """``"key: old -> new"`` for every field where ``old`` (a config.json's "config",
        perhaps written by an older version: missing keys take today's defaults) differs
        from this config, the fields that change no result (:data:`IGNORED_CONFIG_KEYS`)
        aside. ``action_scale`` counts only where it changes the env, and a config.json
        without it (older than the field) acted in the env's bounds."""
        before = Config().to_dict()
        before["action_scale"] = "env"
        before.update(old)
        before["eta"] = before["eta"] or eta_preset(before["algo"])  # older config.json
        now = self.to_dict()
        diffs = []
        for key in sorted(set(before) | set(now)):
            if key in IGNORED_CONFIG_KEYS or (key == "action_scale"
                                              and not action_scale_matters(self.env)):
                continue
            a, b = before.get(key), now.get(key)
            if isinstance(a, list | tuple) and isinstance(b, list | tuple):
                a, b = list(a), list(b)
            if a != b:
                diffs.append(f"{key}: {a!r} -> {b!r}")
        return diffs

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    # ------------------------------------------------------------------ overrides
    def with_overrides(self, overrides: dict[str, Any] | list[str]) -> Config:
        """Return a copy with ``overrides`` applied.

        ``overrides`` is a dict of already-typed values or a list of ``"key=value"`` strings
        (as given on the command line); strings are parsed to the field's declared type.
        """
        if isinstance(overrides, list):
            overrides = parse_pairs(overrides)
        hints = typing.get_type_hints(type(self))
        valid = self.field_names()
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in valid:
                raise ConfigError(
                    f"unknown config key {key!r}; valid keys: {', '.join(sorted(valid))}")
            changes[key] = parse_value(key, value, hints[key])
        if "algo" in changes and "eta" not in changes:
            changes["eta"] = ""  # the new algo's preset, unless eta is given with it
        return dataclasses.replace(self, **changes)


def _positive(cfg: Config, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(key: str, value: Any, hint: Any) -> Any:
    """Parse ``value`` (a string from the command line, or a typed value) to ``hint``."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            s = str(value).lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(f"expected a boolean ({'/'.join(sorted(_TRUE | _FALSE))})")
        if hint is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError("expected an integer")
                return int(value)
            if isinstance(value, str):
                f = float(value)  # accepts "1e6"
                if not f.is_integer():
                    raise ValueError("expected an integer")
                return int(f)
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if hint is str:
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                parts = [p for p in value.replace("(", "").replace(")", "").split(",") if p]
            else:
                parts = list(value)
            return tuple(int(p) for p in parts)
        if origin in (dict, types.UnionType):
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value for {key!r}: {value!r} ({exc})") from None
    return value


def parse_pairs(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (as given on a command line) -> {key: value}, values as strings
    (:meth:`Config.with_overrides` types them); ConfigError for an item without ``=``."""
    pairs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value.strip()
    return pairs


def load_config(algo: str, env: str, seed: int, overrides: list[str] | dict[str, Any] | None = None,
                **fields: Any) -> Config:
    """Build and validate a config from the CLI pieces; raises ConfigError on bad input."""
    base = Config(algo=algo, env=env, seed=seed)
    extra = {k: v for k, v in fields.items() if v is not None}
    cfg = base.with_overrides(extra)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    return cfg.validate()
