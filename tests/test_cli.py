"""End-to-end: the CLI writes a run directory; same seed, same progress.csv; NaN stops a run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qprop_tf.config import load_config
from qprop_tf.errors import NonFiniteError
from qprop_tf.progress import TIME_COLUMNS
from qprop_tf.run import train

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["iteration", "env_steps", "paper_episodes", "real_episodes", "average_return",
            "max_return_so_far", "time", "steps_per_second", "mean_kl", "entropy"]


def _cli(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "qprop_tf", "train", "--algo", "trpo", "--env", "Hopper",
           "--seed", "3", "--batch-size", "300", "--max-steps", "600", "--out", str(out),
           *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    return [(_cli(base / f"run{i}"), base / f"run{i}") for i in range(2)]


def test_cli_smoke_writes_config_progress_and_events(two_runs):
    proc, out = two_runs[0]
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["batch_size"] == 300 and cfg["env_id"] == "Hopper-v5"
    assert {"tensorflow", "gymnasium", "mujoco"} <= set(cfg["versions"])
    assert cfg["git_commit"]
    assert len(cfg["machines"]) == 1 and cfg["machines"][0]["cpu"]  # where the run was made
    df = pd.read_csv(out / "progress.csv")
    assert set(REQUIRED) <= set(df.columns)
    assert list(df.iteration) == [0, 1]
    assert df.env_steps.iloc[-1] >= 600
    np.testing.assert_allclose(df.paper_episodes, df.env_steps / 1000)
    assert list(out.glob("events.out.tfevents.*"))
    assert "it    1" in proc.stdout + proc.stderr  # per-iteration summary line
    # a quiet start-up: none of TF's start-up lines (absl notice, oneDNN, CUDA)
    for line in ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda"):
        assert line not in proc.stderr, proc.stderr
    assert (out / "policy.npz").is_file()  # a finished run keeps its policy


def test_same_seed_gives_identical_progress(two_runs):
    (p0, out0), (p1, out1) = two_runs
    assert p0.returncode == 0 and p1.returncode == 0
    a = pd.read_csv(out0 / "progress.csv").drop(columns=list(TIME_COLUMNS), errors="ignore")
    b = pd.read_csv(out1 / "progress.csv").drop(columns=list(TIME_COLUMNS), errors="ignore")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cli_rejects_bad_input_before_training(tmp_path):
    for extra, fragment in [(["--set", "nope=1"], "unknown config key"),
                            (["--batch-size", "-1"], "batch_size must be > 0"),
                            (["--set", "ou_sigma=0.5"], "--set ou_sigma: DDPG's; --algo trpo"),
                            (["--set", "reward_scale=0.1"], "--set reward_scale: the critic's")]:
        proc = _cli(tmp_path / "bad", *extra)
        assert proc.returncode == 2
        assert fragment in proc.stderr
        assert not (tmp_path / "bad").exists()
    proc = subprocess.run([sys.executable, "-m", "qprop_tf", "train", "--env", "Hopperr"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "valid:" in proc.stderr and "HalfCheetah" in proc.stderr


def test_nan_in_update_stops_run_and_keeps_log(tmp_path):
    cfg = load_config("vpg", "Hopper", 0, ["batch_size=200", "max_steps=2000",
                                           "progress_bar=false"])

    def poison(iteration, row, policy):
        if iteration == 1:  # corrupt the weights: the next update's loss is NaN
            policy.mean_layer.kernel.assign(np.full(policy.mean_layer.kernel.shape, np.nan))

    with pytest.raises(NonFiniteError, match="non-finite"):
        train(cfg, tmp_path / "nan", on_iteration=poison)
    df = pd.read_csv(tmp_path / "nan" / "progress.csv")
    assert list(df.iteration) == [0, 1]


def test_every_scoped_field_exists_and_the_scopes_are_right():
    """config_scope's fields are Config's, and each scope names who reads it; a field a
    chosen algo reads is never refused (qprop-c: the critic's, Q-Prop's, TRPO's), nor one
    left at its default (scripts pass an algorithm's whole merged config)."""
    from dataclasses import fields

    from qprop_tf.config import Config
    from qprop_tf.config_scope import SCOPES, inapplicable

    names = {f.name for f in fields(Config)}
    for _, _, scoped in SCOPES.values():
        assert set(scoped) <= names

    def check(algo, **values):
        return inapplicable(Config(algo=algo, **values).validate(), list(values))

    assert check("qprop-c", reward_scale=0.1, scale_analytic=True, max_kl=0.02,
                 gae_lambda=0.9, seed=3, batch_size=100) == []
    assert check("ddpg", reward_scale=0.1, ou_sigma=0.2, qf_lr=1e-4) == []
    assert check("vqprop-c", vpg_lr=1e-2, qf_lr=1e-4) == []
    assert [m.split(":")[0] for m in check("ddpg", max_kl=0.02, gae_lambda=0.9)] == [
        "--set max_kl", "--set gae_lambda"]
    assert check("ddpg", max_kl=0.01, gae_lambda=0.97) == []  # the defaults: no effect either way
    assert check("vpg", max_kl=0.02) and check("trpo", vpg_lr=1e-2)
    assert check("trpo", scale_analytic=True) and check("qprop", ou_theta=0.5)
