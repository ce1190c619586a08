"""Time sb3-contrib's PyTorch TRPO on one env; run by ``reproduce.bench.peers`` in .venv-peers.

Imports only torch, stable-baselines3, sb3-contrib and gymnasium (never TensorFlow or
qprop_tf), so it runs as a file under the peer interpreter::

    .venv-peers/bin/python -I reproduce/bench/sb3_trpo_speed.py --steps 50000

It prints one JSON line: construction time, ``model.learn`` wall time and steps/s (the
training loop only), and steps/s after the first iteration (from rollout-start timestamps).
"""

from __future__ import annotations

import argparse
import json
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import sb3_contrib  # noqa: E402
import stable_baselines3  # noqa: E402
import torch  # noqa: E402
from sb3_contrib import TRPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

POLICY_HIDDEN = [100, 50, 25]
VF_HIDDEN = [64, 64]


class RolloutClock(BaseCallback):
    """Records perf_counter at the start of every rollout (= every iteration)."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[float] = []

    def _on_rollout_start(self) -> None:
        self.starts.append(time.perf_counter())

    def _on_step(self) -> bool:
        return True


def run(env_id: str, steps: int, n_steps: int, batch_size: int, seed: int) -> dict[str, object]:
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    t0 = time.perf_counter()
    env = gym.make(env_id)
    model = TRPO("MlpPolicy", env, n_steps=n_steps, batch_size=batch_size, seed=seed,
                 device="cpu", verbose=0,
                 policy_kwargs={"net_arch": {"pi": POLICY_HIDDEN, "vf": VF_HIDDEN},
                                "activation_fn": torch.nn.Tanh})
    construct = time.perf_counter() - t0
    clock = RolloutClock()
    t1 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=clock)
    t_end = time.perf_counter()
    wall = t_end - t1
    done = int(model.num_timesteps)
    after_first = float("nan")
    if len(clock.starts) > 1:
        after_first = (done - n_steps) / (t_end - clock.starts[1])
    return {"env": env_id, "steps": done, "n_steps": n_steps, "batch_size": batch_size,
            "construct_s": construct, "learn_s": wall, "steps_per_s": done / wall,
            "steps_per_s_after_first": after_first, "iterations": len(clock.starts),
            "torch_threads": torch.get_num_threads(),
            "versions": {"torch": torch.__version__,
                         "stable_baselines3": stable_baselines3.__version__,
                         "sb3_contrib": sb3_contrib.__version__, "gymnasium": gym.__version__,
                         "mujoco": mujoco.__version__, "numpy": np.__version__}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=50000)
    parser.add_argument("--n-steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = run(args.env, args.steps, args.n_steps, args.batch_size, args.seed)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
