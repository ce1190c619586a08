"""The redesign of issue 12 changed no number: same seed and config, same progress.csv.

The fixtures in ``tests/fixtures/d3de333/`` are the progress.csv files (time columns
dropped) of five small Hopper runs made with the code of commit d3de333, before the
redesign, by::

    git worktree add /tmp/old d3de333 && cd /tmp/old
    python -m qprop_tf train --env Hopper --seed 0 --batch-size 300 --max-steps 1200 \\
        --no-progress --set checkpoint_minutes=0 --out /tmp/fx/<case> <the case's ARGS below>

and then, for each file, the time columns (``qprop_tf.progress.TIME_COLUMNS``; at d3de333
``qprop_tf.logger.TIME_COLUMNS``) removed with the csv module, the other fields kept as
written. ``test_same_progress_as_d3de333`` runs the same commands with today's code and
compares exactly (the columns added since, :data:`ADDED_COLUMNS`, aside).

``test_checkpoint_of_d3de333_resumes_exactly`` takes the code of d3de333 out of git
(``git archive``), runs it until it has checkpointed 2 iterations and then dies (no clean
exit: its LOCK stays behind, as after a kill), resumes the run with today's code and
compares the finished progress.csv with the fixture of the uninterrupted run. It is
skipped where git or the commit is not at hand (a shallow clone, an unpacked archive).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from qprop_tf.cli import main as cli_main
from qprop_tf.progress import DDPG_COLUMNS, ON_POLICY_COLUMNS, QPROP_COLUMNS, TIME_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "d3de333"
OLD_COMMIT = "d3de333"
COMMON = ["--env", "Hopper", "--seed", "0", "--batch-size", "300", "--max-steps", "1200",
          "--no-progress", "--set", "checkpoint_minutes=0"]
ADDED_COLUMNS = (
    # issue 14: the critic's fit and divergence flag
    "critic_oob_fraction", "critic_max_abs_mu", "critic_target_mean_abs",
    "critic_target_max_abs", "critic_target_oob_mean_abs", "critic_target_oob_max_abs",
    "critic_grad_norm",
    "critic_grad_norm_max", "critic_diverged",
    # issue 14: the analytic term's share of the policy step (NaN without one)
    "analytic_grad_norm", "analytic_step_share",
)
"""Columns progress.csv gained after d3de333; the fixtures' columns are compared exactly."""
CASES = {
    "trpo": ["--algo", "trpo"],
    "qprop-c": ["--algo", "qprop-c", "--set", "min_replay=200"],
    "ddpg": ["--algo", "ddpg", "--set", "min_replay=200", "--set", "eval_steps=200"],
    "qprop-c-fixed": ["--algo", "qprop-c", "--set", "min_replay=200", "--set", "rollout=fixed",
                      "--set", "baseline=mlp", "--set", "vf_target=lambda"],
    "vqprop-adaptive": ["--algo", "vqprop-adaptive", "--set", "min_replay=200",
                        "--set", "n_envs=2", "--set", "baseline=mlp"],
}


def _args(case: str, out: Path) -> list[str]:
    return ["train", *COMMON, "--out", str(out), *CASES[case]]


def _same_as_fixture(case: str, out: Path) -> None:
    got = pd.read_csv(out / "progress.csv", float_precision="round_trip")
    want = pd.read_csv(FIXTURES / f"{case}.csv", float_precision="round_trip")
    got = got.drop(columns=[c for c in TIME_COLUMNS if c in got.columns])
    assert set(got.columns) - set(want.columns) <= set(ADDED_COLUMNS)
    pd.testing.assert_frame_equal(got[list(want.columns)], want, check_exact=True)


@pytest.mark.parametrize("case,schema", [("trpo", ON_POLICY_COLUMNS), ("qprop-c", QPROP_COLUMNS),
                                         ("ddpg", DDPG_COLUMNS)])
def test_the_schema_is_the_columns_of_d3de333(case, schema):
    """qprop_tf.progress declares the columns progress.csv had, in their order, followed by
    the columns added since (ADDED_COLUMNS)."""
    header = (FIXTURES / f"{case}.csv").read_text().splitlines()[0].split(",")
    now = [c for c in schema if c not in TIME_COLUMNS]
    assert now[:len(header)] == header
    assert set(now[len(header):]) <= set(ADDED_COLUMNS)


@pytest.mark.parametrize("case", list(CASES))
def test_same_progress_as_d3de333(case, tmp_path):
    assert cli_main(_args(case, tmp_path / case)) == 0
    _same_as_fixture(case, tmp_path / case)


# The old code, run in its own process until it has checkpointed two iterations; then it
# dies without cleaning up (os._exit), as a killed run would.
_OLD_RUN = """
import os, sys
from qprop_tf.cli import build_parser
from qprop_tf.config import load_config
from qprop_tf.runtime import limit_threads

args = build_parser().parse_args(sys.argv[1:])
cfg = load_config(args.algo, args.env, args.seed, args.overrides, out=args.out,
                  batch_size=args.batch_size, max_steps=float(args.max_steps),
                  progress_bar=False)
limit_threads(cfg.tf_threads)
from qprop_tf.train import train

def die(iteration, row, policy):
    if iteration == 1:
        os._exit(0)

train(cfg, args.out, on_iteration=die)
"""


@pytest.fixture(scope="module")
def old_code(tmp_path_factory) -> Path:
    """The qprop_tf package as of d3de333, from git."""
    where = tmp_path_factory.mktemp("old")
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "qprop_tf"],
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"the code of {OLD_COMMIT} is not in this checkout's git history")
    archive = where / "old.tar"
    archive.write_bytes(tar)
    with tarfile.open(archive) as t:
        t.extractall(where, filter="data")
    return where


@pytest.mark.parametrize("case", ["qprop-c-fixed", "ddpg", "vqprop-adaptive"])
def test_checkpoint_of_d3de333_resumes_exactly(case, old_code, tmp_path, capsys):
    out = tmp_path / case
    env = {**os.environ, "PYTHONPATH": str(old_code)}
    old = subprocess.run([sys.executable, "-c", _OLD_RUN, *_args(case, out)],
                         cwd=old_code, env=env, capture_output=True, text=True, timeout=600)
    assert old.returncode == 0, old.stderr[-3000:]
    assert len((out / "progress.csv").read_text().splitlines()) == 3  # header + 2 rows
    assert (out / "checkpoint" / "ckpt-000002").is_dir() and (out / "LOCK").is_file()
    assert cli_main(_args(case, out)) == 0
    assert "resuming" in capsys.readouterr().out
    _same_as_fixture(case, out)
