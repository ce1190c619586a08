"""sb3-contrib's TRPO on one env and seed, logged as qprop_tf logs its own runs.

Run by ``reproduce.parity`` under the peer interpreter (.venv-peers); it imports only torch,
stable-baselines3, sb3-contrib, gymnasium and NumPy (never TensorFlow or qprop_tf)::

    .venv-peers/bin/python -I reproduce/sb3_trpo.py --env Hopper-v5 --seed 0 \
        --steps 500000 --out /var/tmp/run

The call is the one of issue 11, sb3's defaults otherwise::

    TRPO("MlpPolicy", RecordEpisodeStatistics(gym.make(env)), n_steps=5000, batch_size=128,
         gae_lambda=0.97, gamma=0.99, target_kl=0.01, cg_max_steps=10,
         policy_kwargs=dict(net_arch=dict(pi=[100, 50, 25], vf=[64, 64])), seed=S)

with ``torch.set_num_threads(1)``. ``--cg-damping`` and ``--no-ortho-init`` give the issue's
second sb3 row. The run directory gets ``config.json`` (the call, the versions),
``progress.csv`` (one row per rollout of n_steps: ``iteration, env_steps, average_return``
= the mean undiscounted return of the episodes that *ended* in that rollout, NaN when none
did, ``batch_episodes``, ``time``), written row by row, and ``DONE`` last. A run directory
without DONE is started over (a run is minutes long); one with DONE is skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

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

COLUMNS = ("iteration", "env_steps", "average_return", "batch_episodes", "time")


class BatchReturns(BaseCallback):
    """Appends one progress.csv row per rollout: the mean return of the episodes it ended."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file = open(path, "w", newline="")  # noqa: SIM115 (closed in close())
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)
        self.returns: list[float] = []
        self.iteration = 0
        self.t0 = time.perf_counter()

    def _on_rollout_start(self) -> None:
        self.returns = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(float(np.asarray(info["episode"]["r"]).item()))
        return True

    def _on_rollout_end(self) -> None:
        mean = float(np.mean(self.returns)) if self.returns else math.nan
        self.writer.writerow([self.iteration, int(self.num_timesteps), mean, len(self.returns),
                              round(time.perf_counter() - self.t0, 3)])
        self.file.flush()
        self.iteration += 1

    def close(self) -> None:
        self.file.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--n-steps", type=int, default=5000)
    p.add_argument("--cg-damping", type=float, default=0.1, help="sb3's default 0.1")
    p.add_argument("--no-ortho-init", action="store_true", help="sb3 default: orthogonal")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    if (out / "DONE").is_file():
        print(f"run already finished: {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    kwargs = dict(n_steps=args.n_steps, batch_size=128, gae_lambda=0.97, gamma=0.99,
                  target_kl=0.01, cg_max_steps=10, cg_damping=args.cg_damping,
                  policy_kwargs=dict(net_arch=dict(pi=[100, 50, 25], vf=[64, 64]),
                                     ortho_init=not args.no_ortho_init),
                  seed=args.seed)
    config = {"impl": "sb3-contrib TRPO", "env": args.env, "steps": args.steps,
              "call": {k: v for k, v in kwargs.items()}, "torch_threads": 1,
              "versions": {"torch": torch.__version__,
                           "stable_baselines3": stable_baselines3.__version__,
                           "sb3_contrib": sb3_contrib.__version__,
                           "gymnasium": gym.__version__, "mujoco": mujoco.__version__,
                           "numpy": np.__version__, "python": sys.version.split()[0]}}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(args.env))
    model = TRPO("MlpPolicy", env, device="cpu", verbose=0, **kwargs)
    cb = BatchReturns(out / "progress.csv")
    t0 = time.perf_counter()
    try:
        model.learn(total_timesteps=args.steps, callback=cb)
    finally:
        cb.close()
    done = {"env_steps": int(model.num_timesteps), "seconds": round(time.perf_counter() - t0, 1)}
    tmp = out / "DONE.tmp"
    tmp.write_text(json.dumps(done))
    os.replace(tmp, out / "DONE")
    print(f"run finished: {out} ({done['env_steps']:,} steps in {done['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
