"""The paper's names for our algorithms: run names (``--algos``, variants included) -> the
names the tables, figures and reports show (``paper_name``). Display only; a run name without
an entry shows as itself.
"""

from __future__ import annotations

PAPER_NAMES: dict[str, str] = {"qprop-c": "TR-c-Q-Prop", "trpo": "TRPO", "ddpg": "DDPG",
                               "qprop": "TR-Q-Prop", "qprop-a": "TR-a-Q-Prop",
                               "vqprop-c": "v-c-Q-Prop", "vpg": "VPG", "ddpg-r0.1": "DDPG-r0.1",
                               "trpo-b1000": "TRPO, batch 1000",
                               "trpo-b5000": "TRPO, batch 5000 (ablation)",
                               "trpo-b1000-term": "TRPO, batch 1000, time limit terminal "
                                                  "(authors')",
                               "qprop-c-b1000-term": "TR-c-Q-Prop, batch 1000, time limit "
                                                     "terminal (authors')",
                               "qprop-c-b1000": "TR-c-Q-Prop, batch 1000",
                               "qprop-c-b25000": "TR-c-Q-Prop, batch 25000",
                               "qprop-c-clipq": "TR-c-Q-Prop, critic on clipped actions "
                                                "(ablation)",
                               "qprop-c-scaled": "TR-c-Q-Prop, analytic term rescaled "
                                                 "(ablation)",
                               "qprop-c-r0.1": "TR-c-Q-Prop, critic reward scale 0.1 "
                                               "(authors' grid)",
                               "qprop-c-r0.01": "TR-c-Q-Prop, critic reward scale 0.01 "
                                                "(authors' grid)",
                               "qprop-c-tclip": "TR-c-Q-Prop, TD target at clipped mu(s') "
                                                "(ours)",
                               "qprop-c-huber": "TR-c-Q-Prop, Huber TD loss (ours)",
                               "qprop-c-gclip": "TR-c-Q-Prop, critic gradient clipped (ours)",
                               "qprop-c-lagged": "TR-c-Q-Prop, lagged target policy (ours)",
                               "qprop-c-qlr1e-4": "TR-c-Q-Prop, critic lr 1e-4 (ours)",
                               "trpo-strong": "TRPO, strong base (extra row)",
                               "qprop-c-strong": "TR-c-Q-Prop, strong base (extra row)",
                               "qprop-c-strong-tclip": "TR-c-Q-Prop, strong base, TD target "
                                                       "at clipped mu(s') (ours)",
                               "qprop-c-strong-lagged": "TR-c-Q-Prop, strong base, lagged "
                                                        "target policy (ours)",
                               "qprop-c-strong-huber": "TR-c-Q-Prop, strong base, Huber TD "
                                                       "loss (ours)",
                               "qprop-c-strong-gclip": "TR-c-Q-Prop, strong base, critic "
                                                       "gradient clipped (ours)",
                               "qprop-c-strong-qlr1e-4": "TR-c-Q-Prop, strong base, critic "
                                                         "lr 1e-4 (ours)"}


PROFILE_TAGS: dict[str, str] = {"humanoid-env": "actions in env units (ours)"}
"""Run names ``<algo>@<profile>`` (a ``row_tag`` profile's extra rows): what the tag says."""


def untagged(algo: str) -> str:
    """The algorithm of a run name, without a ``@<profile>`` row tag."""
    return algo.partition("@")[0]


def paper_name(algo: str) -> str:
    base, _, profile = algo.partition("@")
    if profile:
        return f"{PAPER_NAMES.get(base, base)}, {PROFILE_TAGS.get(profile, profile)}"
    return PAPER_NAMES.get(algo, algo)
