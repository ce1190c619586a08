"""A finished run keeps its policy (policy.npz); ``python -m qprop_tf play`` evaluates it and
writes a video; its errors exit 2 with one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qprop_tf.actor import NumpyActor
from qprop_tf.config import load_config
from qprop_tf.errors import PolicyFileError
from qprop_tf.play import evaluate, last_logged_return
from qprop_tf.policy import NumpyPolicy
from qprop_tf.run import train
from qprop_tf.rundir import DONE
from qprop_tf.saved_policy import POLICY_FILE, load_policy

ROOT = Path(__file__).resolve().parent.parent
ON_POLICY = ["batch_size=200", "max_steps=400", "progress_bar=false"]
DDPG = ["batch_size=100", "max_steps=300", "min_replay=50", "eval_steps=30",
        "replay_size=2000", "actor_hidden=16,16", "qf_hidden=16,16", "critic_xla=false",
        "progress_bar=false", "ddpg_chunk=8"]


def _train(out: Path, algo: str, env: str, overrides: list[str]):
    """Train a tiny run; return (run dir, the trained Keras policy/actor)."""
    seen = {}
    train(load_config(algo, env, 0, overrides), out,
          on_iteration=lambda i, row, policy: seen.update(policy=policy), verbose=False)
    return out, seen["policy"]


@pytest.fixture(scope="module")
def trpo_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("play") / "trpo", "trpo", "Hopper", ON_POLICY)


@pytest.fixture(scope="module")
def ddpg_run(tmp_path_factory):
    # the env's own bounds (+-3), so the saved actor is the trained one, bit for bit (a
    # unit-scaled one folds the map in: test_action_scale)
    return _train(tmp_path_factory.mktemp("play") / "ddpg", "ddpg", "InvertedPendulum-v5",
                  [*DDPG, "action_scale=env"])


def _obs(policy, n: int = 64) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, policy.obs_dim))


def test_on_policy_run_keeps_its_policy_and_it_acts_as_before(trpo_run):
    run_dir, policy = trpo_run
    assert (run_dir / DONE).is_file() and (run_dir / POLICY_FILE).is_file()
    assert not (run_dir / "checkpoint").exists()
    assert (run_dir / POLICY_FILE).stat().st_size < 200_000
    saved = load_policy(run_dir)
    assert saved.kind == "gaussian" and saved.env_id == "Hopper-v5"
    obs = _obs(policy)
    # the mean the run's own NumPy mirror computes, bit for bit; the Keras model to float32
    np.testing.assert_array_equal(saved.mean(obs), NumpyPolicy(policy).mean(obs))
    np.testing.assert_allclose(saved.mean(obs), policy(obs.astype(np.float32)).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(saved.log_std, policy.log_std.numpy())
    acts = saved.act(obs * 100)
    assert np.all(acts <= saved.high) and np.all(acts >= saved.low)


def test_ddpg_run_keeps_its_actor_and_it_acts_as_before(ddpg_run):
    run_dir, actor = ddpg_run
    assert (run_dir / DONE).is_file()
    saved = load_policy(run_dir / POLICY_FILE)  # the file itself works too
    assert saved.kind == "deterministic" and saved.log_std is None
    obs = _obs(actor)
    np.testing.assert_array_equal(saved.mean(obs), NumpyActor(actor)(obs))
    np.testing.assert_allclose(saved.mean(obs), actor(obs.astype(np.float32)).numpy(),
                               rtol=1e-5, atol=1e-5)


def _play(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qprop_tf", "play", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def test_play_prints_the_noise_free_return(trpo_run):
    run_dir, _ = trpo_run
    proc = _play("--run", str(run_dir), "--episodes", "3", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"return (-?[\d.]+) ± ([\d.]+) over 3 episodes", proc.stdout)
    assert match, proc.stdout
    expected = evaluate(load_policy(run_dir), "Hopper-v5", 3, seed=5)
    assert float(match.group(1)) == pytest.approx(np.mean(expected.returns), abs=0.051)
    assert float(match.group(2)) == pytest.approx(np.std(expected.returns), abs=0.051)
    assert "last logged average_return" in proc.stdout
    assert proc.stderr == ""  # no TF start-up lines: play never loads TF


def test_play_compares_ddpg_with_its_last_evaluation_not_its_noisy_episodes(
        ddpg_run, trpo_run, tmp_path):
    progress = pd.read_csv(ddpg_run[0] / "progress.csv")
    progress["average_return"] = -1.0  # the noisy training episodes' return, set apart
    progress.to_csv(tmp_path / "progress.csv", index=False)
    last = progress.iloc[-1]
    assert last_logged_return(tmp_path) == ("eval_return", last["eval_return"],
                                            last["env_steps"])
    on_policy = pd.read_csv(trpo_run[0] / "progress.csv").iloc[-1]
    assert last_logged_return(trpo_run[0]) == ("average_return", on_policy["average_return"],
                                               on_policy["env_steps"])


def test_evaluation_is_deterministic_and_seeded(ddpg_run):
    saved = load_policy(ddpg_run[0])
    a = evaluate(saved, "InvertedPendulum-v5", 2, seed=3)
    b = evaluate(saved, "InvertedPendulum-v5", 2, seed=3)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert a.returns.size == 2 and a.lengths.min() >= 1


def _egl_missing() -> str | None:
    probe = ("import os; os.environ['MUJOCO_GL'] = 'egl'; import mujoco; "
             "c = mujoco.GLContext(64, 64); c.make_current(); c.free()")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def egl():
    reason = _egl_missing()
    if reason is not None:
        pytest.skip(f"EGL (MuJoCo's offscreen renderer) is not available here: {reason}")


def _frames(path: Path) -> int:
    import imageio.v3 as iio

    return int(iio.imread(path, index=None).shape[0])


def test_video_has_the_expected_frames(trpo_run, egl, tmp_path):
    run_dir, _ = trpo_run
    capped = tmp_path / "capped.gif"
    proc = _play("--run", str(run_dir), "--episodes", "1", "--video", str(capped),
                 "--max-frames", "4", "--width", "64", "--height", "48")
    assert proc.returncode == 0, proc.stderr
    assert _frames(capped) == 4 and "4 frames at 25 fps" in proc.stdout
    # the whole first episode: the reset, then every 5th step (Hopper renders at 125 fps)
    # and the last one
    whole = tmp_path / "whole.gif"
    proc = _play("--run", str(run_dir), "--episodes", "1", "--video", str(whole),
                 "--width", "64", "--height", "48", "--max-frames", "1000")
    assert proc.returncode == 0, proc.stderr
    length = int(evaluate(load_policy(run_dir), "Hopper-v5", 1, seed=0).lengths[0])
    assert _frames(whole) == 1 + -(-length // 5)
    assert "the whole episode" in proc.stdout


def test_mp4_video(trpo_run, egl, tmp_path):
    pytest.importorskip("imageio_ffmpeg",
                        reason="MP4 needs imageio-ffmpeg (optional, not in requirements.txt)")
    out = tmp_path / "v.mp4"
    proc = _play("--run", str(trpo_run[0]), "--episodes", "1", "--video", str(out),
                 "--max-frames", "6", "--width", "64", "--height", "48")
    assert proc.returncode == 0, proc.stderr
    assert _frames(out) == 6


def _one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qprop-tf: error:"), proc.stderr
    assert fragment in lines[0]


def test_play_errors_exit_2_with_one_line(trpo_run, tmp_path):
    _one_line_error(_play("--run", str(tmp_path / "nowhere")), "no such run directory")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / DONE).write_text("{}")
    _one_line_error(_play("--run", str(tmp_path / "old")), "no saved policy")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / POLICY_FILE).write_text("not a zip")
    _one_line_error(_play("--run", str(tmp_path / "bad")), "not a saved policy")
    _one_line_error(_play("--run", str(trpo_run[0]), "--video", str(tmp_path / "v.avi")),
                    ".gif or .mp4")
    with pytest.raises(PolicyFileError):
        load_policy(tmp_path / "old")


def test_no_gl_backend_stops_only_the_video(trpo_run, tmp_path):
    run_dir = str(trpo_run[0])
    broken = {"MUJOCO_GL": "no-such-backend"}
    _one_line_error(_play("--run", run_dir, "--episodes", "1", "--video",
                          str(tmp_path / "v.gif"), env=broken), "MUJOCO_GL='no-such-backend'")
    assert not (tmp_path / "v.gif").exists()
    proc = _play("--run", run_dir, "--episodes", "1", env=broken)  # no video: no GL at all
    assert proc.returncode == 0 and "over 1 episodes" in proc.stdout, proc.stderr


@pytest.mark.parametrize("algo, overrides", [("trpo", ON_POLICY), ("ddpg", DDPG)])
def test_a_unit_scaled_humanoid_policy_is_saved_in_the_envs_bounds(tmp_path, algo, overrides):
    """action_scale=unit: the run acts in [-1, 1], its saved policy on the raw env (bounds
    +-0.4): the run's clipped action, mapped by 0.4, is what the saved policy does."""
    out, model = _train(tmp_path / algo, algo, "Humanoid",
                        [*overrides, "action_scale=unit"])
    saved = load_policy(out)
    assert np.allclose(saved.low, -0.4) and np.allclose(saved.high, 0.4)
    obs = _obs(saved)
    mean = NumpyPolicy(model).mean(obs) if algo == "trpo" else NumpyActor(model)(obs)
    run_action = np.clip(mean, -1.0, 1.0)
    np.testing.assert_allclose(saved.act(obs), 0.4 * run_action, atol=1e-5)
    result = evaluate(saved, "Humanoid-v5", 1, 0)  # the raw env: no wrapper needed
    assert result.returns.shape == (1,)


def _actor(first_layer_gain: float):
    """A one-action tanh actor on InvertedPendulum's 4 observations, scaled to its bounds."""
    from qprop_tf.saved_policy import SavedPolicy
    w0 = np.full((4, 8), first_layer_gain)
    layers = ((w0, np.zeros(8), "linear"), (np.ones((8, 1)), np.zeros(1), "tanh"))
    return SavedPolicy(kind="deterministic", env_id="InvertedPendulum-v5", layers=layers,
                       center=np.zeros(1), scale=np.full(1, 3.0), low=np.full(1, -3.0),
                       high=np.full(1, 3.0))


def test_a_saturated_actor_is_reported_and_a_small_one_is_not(trpo_run):
    big, small = _actor(1e4), _actor(1e-4)
    assert big.bounded and not load_policy(trpo_run[0]).bounded  # the Gaussian's mean is linear
    obs = _obs(big)  # z = 8 * gain * sum(obs)
    np.testing.assert_allclose(big.preactivation(obs)[:, 0], 8e4 * obs.sum(axis=1))
    np.testing.assert_array_equal(big.mean(obs), 3.0 * np.tanh(big.preactivation(obs)))
    pinned = evaluate(big, "InvertedPendulum-v5", 2, seed=0)
    free = evaluate(small, "InvertedPendulum-v5", 2, seed=0)
    # |tanh(z)| > 0.99 needs |z| > 2.65: with a gain of 1e4 every step but one whose
    # observations sum to within 3e-5 of 0; with 1e-4 none (|z| < 1e-3 for |obs| < 1)
    assert pinned.saturated > 0.5 and pinned.median_abs_z > 3.0
    assert free.saturated == 0.0 and free.median_abs_z < 1e-3
    assert "saturated outputs" in pinned.summary()
    assert "saturated" not in evaluate(load_policy(trpo_run[0]), "Hopper-v5", 1, 0).summary()
