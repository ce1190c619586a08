"""Runs that survive: kill-and-resume is exact, checkpoints fall back, sweeps lock, bad input.

Kill tests run the CLI in a subprocess and SIGKILL/SIGTERM it once progress.csv holds 2 and
then 4 rows (mid-iteration: the kill lands while the next iteration runs), resume with the
same command, and compare the final progress.csv with an uninterrupted run's, apart from
the time columns.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qprop_tf.checkpoint import Checkpointer, check_state_finite
from qprop_tf.cli import main as cli_main
from qprop_tf.config import load_config
from qprop_tf.errors import NonFiniteError, RunLocked
from qprop_tf.progress import TIME_COLUMNS
from qprop_tf.run import train
from qprop_tf.rundir import DONE, LOCK, machines_so_far, proc_stat, run_lock

ROOT = Path(__file__).resolve().parent.parent
SMOKE = {
    "qprop-c": ["--batch-size", "300", "--max-steps", "1800", "--set", "min_replay=200"],
    "ddpg": ["--batch-size", "300", "--max-steps", "1800", "--set", "min_replay=200",
             "--set", "eval_steps=200"],
}


def _args(algo: str, out: Path, *extra: str) -> list[str]:
    return ["train", "--algo", algo, "--env", "Hopper", "--seed", "2", *SMOKE[algo],
            "--set", "checkpoint_minutes=0", "--no-progress", "--out", str(out), *extra]


def _rows(out: Path) -> int:
    try:
        return max(0, len((out / "progress.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def _run_until(algo: str, out: Path, rows: int, sig: int) -> subprocess.CompletedProcess:
    """Start the CLI, send ``sig`` once progress.csv has ``rows`` rows; wait for the exit."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "qprop_tf", *_args(algo, out)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _rows(out) < rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _resume(algo: str, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "qprop_tf", *_args(algo, out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _same_progress(a: Path, b: Path) -> None:
    x, y = pd.read_csv(a / "progress.csv"), pd.read_csv(b / "progress.csv")
    drop = [c for c in TIME_COLUMNS if c in x.columns]
    assert list(y.iteration) == list(range(len(x)))  # no duplicated or missing iterations
    pd.testing.assert_frame_equal(x.drop(columns=drop), y.drop(columns=drop), check_exact=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, in-process (same numerics as the CLI: one TF thread)."""
    base = tmp_path_factory.mktemp("reference")
    out = {}
    for algo in SMOKE:
        assert cli_main(_args(algo, base / algo)) == 0
        out[algo] = base / algo
    return out


@pytest.mark.parametrize("algo,second", [("qprop-c", signal.SIGKILL),
                                         ("ddpg", signal.SIGTERM)])
def test_kill_and_resume_is_exact(algo, second, reference, tmp_path):
    """SIGKILL after 2 rows, then SIGKILL (Q-Prop) or SIGTERM (DDPG) after 4, then finish."""
    out = tmp_path / algo
    first = _run_until(algo, out, 2, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    assert not (out / DONE).exists() and (out / "checkpoint" / "latest").is_file()
    second_run = _run_until(algo, out, 4, second)
    assert "resuming" in second_run.stdout
    if second == signal.SIGTERM:
        assert second_run.returncode == 143, second_run.stderr[-2000:]
        assert "checkpointed" in second_run.stderr and "progress so far" in second_run.stderr
        meta = json.loads((out / "checkpoint" / (out / "checkpoint/latest").read_text()
                           / "meta.json").read_text())
        assert meta["rows"] == _rows(out)  # nothing logged after the checkpoint
    else:
        assert second_run.returncode == -signal.SIGKILL
    assert not (out / LOCK).exists() or second == signal.SIGKILL
    last = _resume(algo, out)
    assert last.returncode == 0, last.stderr[-2000:]
    assert "resuming" in last.stdout
    assert (out / DONE).is_file() and not (out / "checkpoint").exists()
    _same_progress(reference[algo], out)
    cpu = pd.read_csv(out / "progress.csv")["cpu_time"]  # carried over each resume, like time
    assert cpu.notna().all() and cpu.is_monotonic_increasing and cpu.iloc[0] > 0


def test_finished_run_does_nothing_and_other_config_is_refused(reference, capsys):
    out = reference["qprop-c"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli_main(_args("qprop-c", out)) == 0
    assert "run already finished" in capsys.readouterr().out
    (out / DONE).rename(out / "DONE.saved")
    try:
        assert cli_main([*_args("qprop-c", out), "--set", "gae_lambda=0.9"]) == 2
        err = capsys.readouterr().err
        assert "another configuration" in err and "gae_lambda: 0.97 -> 0.9" in err
    finally:
        (out / "DONE.saved").rename(out / DONE)
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


class Crash(Exception):
    pass


def _crash_after(n: int):
    def hook(iteration, row, policy):
        if iteration == n - 1 and policy is not None:
            raise Crash

    return hook


def _crash_resume_matches_uninterrupted(cfg, tmp_path: Path) -> None:
    """Train ``cfg`` whole in a/, crash it after 2 iterations in b/ and resume: same curve."""
    train(cfg, tmp_path / "a", verbose=False)
    with pytest.raises(Crash):
        train(cfg, tmp_path / "b", on_iteration=_crash_after(2), verbose=False)
    train(cfg, tmp_path / "b", verbose=False)
    _same_progress(tmp_path / "a", tmp_path / "b")


def test_corrupt_checkpoint_falls_back_then_starts_over(reference, tmp_path, capsys):
    cfg = load_config("qprop-c", "Hopper", 2, {"batch_size": 300, "max_steps": 1800,
                                               "min_replay": 200, "checkpoint_minutes": 0,
                                               "progress_bar": False})
    out = tmp_path / "run"
    with pytest.raises(Crash):
        train(cfg, out, on_iteration=_crash_after(4), verbose=False)
    ckpts = sorted((out / "checkpoint").glob("ckpt-*"))
    assert [p.name for p in ckpts] == ["ckpt-000003", "ckpt-000004"]
    data = bytearray((ckpts[1] / "state.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ckpts[1] / "state.npz").write_bytes(bytes(data))
    capsys.readouterr()
    with pytest.raises(Crash):  # resumes from ckpt-000003, crashes again after 5 rows
        train(cfg, out, on_iteration=_crash_after(5), verbose=False)
    text = capsys.readouterr().out
    assert "ckpt-000004 is damaged" in text and "from checkpoint ckpt-000003" in text
    # Damage every checkpoint: the run starts over, with a warning, and still matches.
    for ckpt in (out / "checkpoint").glob("ckpt-*"):
        (ckpt / "meta.json").write_text("{not json")
    train(cfg, out, verbose=False)
    text = capsys.readouterr().out
    assert "no valid checkpoint" in text and "starting over" in text
    _same_progress(reference["qprop-c"], out)


def test_nan_state_is_never_checkpointed(tmp_path):
    with pytest.raises(NonFiniteError, match="not checkpointed"):
        check_state_finite({"policy/0": np.array([1.0, np.nan])})
    cfg = load_config("vpg", "Hopper", 0, ["batch_size=200", "max_steps=2000",
                                           "progress_bar=false", "checkpoint_minutes=0"])

    def poison(iteration, row, policy):
        if iteration == 1:
            policy.mean_layer.kernel.assign(np.full(policy.mean_layer.kernel.shape, np.nan))

    with pytest.raises(NonFiniteError):
        train(cfg, tmp_path / "nan", on_iteration=poison, verbose=False)
    loaded = Checkpointer(tmp_path / "nan", 0).load()
    assert loaded is not None and loaded.meta["iteration"] == 2
    check_state_finite(loaded.arrays)  # the checkpoint predates the poisoned weights
    assert not (tmp_path / "nan" / LOCK).exists()


def test_run_lock_detects_live_and_stale_owners(tmp_path):
    import socket

    lock = tmp_path / LOCK
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 1}))  # live (init)
    with pytest.raises(RunLocked, match="in use by pid 1"), run_lock(tmp_path):
        pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead)}))
    with run_lock(tmp_path):  # stale: taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with run_lock(tmp_path):  # re-entrant in one process
            pass
        assert lock.exists()
    assert not lock.exists()
    zombie = subprocess.Popen(["true"])  # exited, not reaped until wait(): not an owner
    try:
        deadline = time.monotonic() + 60
        while proc_stat(zombie.pid)[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.02)
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": zombie.pid}))
        with run_lock(tmp_path):  # taken over
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    finally:
        zombie.wait()


@pytest.mark.parametrize("extra,fragment", [
    (["--algo", "nope"], "unknown algo"),
    (["--env", "Hoper"], "unknown env"),
    (["--set", "nope=1"], "unknown config key"),
    (["--set", "batch_size=abc"], "bad value for 'batch_size'"),
    (["--set", "gamma=yes"], "bad value for 'gamma'"),
    (["--batch-size", "0"], "batch_size must be > 0"),
    (["--batch-size", "-5"], "batch_size must be > 0"),
    (["--set", "checkpoint_minutes=-1"], "checkpoint_minutes must be >= 0"),
])
def test_bad_input_is_refused_before_anything_is_written(extra, fragment, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--env", "Hopper", "--out", str(out), "--no-progress", *extra]
    assert cli_main(args) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_unwritable_results_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me\n")
    args = ["train", "--env", "Hopper", "--out", str(blocker / "run"), "--no-progress",
            "--batch-size", "100", "--max-steps", "100"]
    assert cli_main(args) == 2
    assert "cannot write the run directory" in capsys.readouterr().err
    assert blocker.read_text() == "keep me\n"


def test_two_concurrent_sweeps_run_each_run_once(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "reproduce.sweep", "--profile", "smoke", "--domains", "Hopper",
           "--algos", "trpo", "--seeds", "2", "--workers", "1", "--backend", "local",
           "--results", str(results), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for seed in (0, 1):
        run = results / f"smoke/runs/Hopper/trpo/seed{seed}"
        assert (run / DONE).is_file() and not (run / LOCK).exists()
        log = (run / "log.txt").read_text()
        assert log.count("[reproduce] Hopper/trpo/seed") == 1, log  # trained once
        assert log.count("[reproduce] done") == 1


def _inproc_cfg(algo: str, **extra):
    return load_config(algo, "Hopper", 4, {"batch_size": 300, "max_steps": 1500,
                                           "min_replay": 200, "checkpoint_minutes": 0,
                                           "eval_steps": 200, "progress_bar": False, **extra})


def test_resume_vpg_mlp_baseline_adaptive_eta_is_exact(tmp_path):
    """VPG's Adam slots, the MLP baseline (weights, Adam, generator), eta's carry-over and
    two envs, crashed after 3 iterations and resumed in-process."""
    cfg = _inproc_cfg("vqprop-adaptive", baseline="mlp", n_envs=2)
    train(cfg, tmp_path / "a", verbose=False)
    with pytest.raises(Crash):
        train(cfg, tmp_path / "b", on_iteration=_crash_after(3), verbose=False)
    train(cfg, tmp_path / "b", verbose=False)
    _same_progress(tmp_path / "a", tmp_path / "b")


def test_resume_lagged_target_policy_and_every_critic_switch_is_exact(tmp_path):
    """Issue 14's critic switches, all on: the lagged target policy's weights and the
    divergence monitor's history are checkpointed; a crash after 2 iterations and a resume
    give the uninterrupted run's progress.csv, its critic statistics included."""
    cfg = _inproc_cfg("qprop-c", critic_target_policy="lagged", critic_target_clip=True,
                      critic_loss="huber", critic_grad_clip=5.0, critic_xla="false")
    _crash_resume_matches_uninterrupted(cfg, tmp_path)
    rows = pd.read_csv(tmp_path / "a" / "progress.csv")
    assert np.isfinite(rows.critic_grad_norm).all() and (rows.critic_diverged == 0).all()
    done = json.loads((tmp_path / "b" / DONE).read_text())
    assert done["critic_diverged_iterations"] == 0 and done["first_diverged_iteration"] is None


def test_resume_strong_base_fixed_rollouts_is_exact(tmp_path):
    """Fixed-length rollouts carry episodes across iterations: a crash between two
    iterations must restore the physics and the episodes in progress (Q-Prop, so the
    replay also sees pieces cut by the batch's end); with every strong-base switch on."""
    cfg = _inproc_cfg("qprop-c", rollout="fixed", n_envs=2, baseline="mlp", vf_epochs=2,
                      vf_minibatch=64, vf_normalize_targets=False, vf_target="lambda",
                      init="orthogonal", cg_damping=0.1, max_backtracks=10)
    _crash_resume_matches_uninterrupted(cfg, tmp_path)
    rows = pd.read_csv(tmp_path / "a" / "progress.csv")
    assert (rows.batch_steps == 300).all()  # exactly batch_size steps a batch


def test_env_without_restorable_state_restarts_its_episode(tmp_path, monkeypatch, capsys):
    import qprop_tf.ddpg as ck

    cfg = _inproc_cfg("ddpg")
    train(cfg, tmp_path / "a", verbose=False)
    with pytest.raises(Crash):
        train(cfg, tmp_path / "b", on_iteration=_crash_after(2), verbose=False)
    real = ck.set_env_state

    def no_physics(env, prefix, meta, arrays):
        return real(env, prefix, meta, {}) and prefix != "env"

    monkeypatch.setattr(ck, "set_env_state", no_physics)
    capsys.readouterr()
    train(cfg, tmp_path / "b", verbose=False)
    assert "interrupted training episode restarts" in capsys.readouterr().out
    a, b = (pd.read_csv(tmp_path / x / "progress.csv") for x in "ab")
    same = ["iteration", "env_steps", "batch_steps"]  # what can still be compared
    pd.testing.assert_frame_equal(a[same], b[same])
    drop = [c for c in TIME_COLUMNS if c in a.columns]
    pd.testing.assert_frame_equal(a.iloc[:2].drop(columns=drop), b.iloc[:2].drop(columns=drop),
                                  check_exact=True)  # the rows from before the crash


def test_sigterm_to_the_sweep_alone_checkpoints_its_runs_and_leaves_no_orphan(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "reproduce.sweep", "--profile", "quick", "--domains", "Hopper",
           "--algos", "trpo", "--seeds", "1", "--workers", "1", "--backend", "local",
           "--results", str(results), "--no-progress", "--set", "batch_size=300"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    run = results / "quick/runs/Hopper/trpo/seed0"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        csv = run / "progress.csv"
        if csv.is_file() and len(csv.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    worker_pid = json.loads((run / LOCK).read_text())["pid"]
    proc.send_signal(signal.SIGTERM)  # to the sweep's own process only
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "resumable" in out
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)  # the worker has exited, not been orphaned
    assert not (run / LOCK).exists() and not (run / DONE).exists()
    assert (run / "checkpoint").is_dir() and any((run / "checkpoint").iterdir())
    assert "[reproduce] interrupted after" in (run / "log.txt").read_text()  # not "failed"


def test_sigterm_to_the_sweep_starts_no_queued_run(tmp_path):
    """3 runs on 1 worker, SIGTERM while the first trains: the first checkpoints and is
    reported interrupted, the two queued runs never start (no run directory)."""
    from reproduce.spec import resolve_runs

    results = tmp_path / "results"
    specs = resolve_runs("smoke", ["Hopper"], ["trpo"], 3, {"max_steps": "200000"})
    cmd = [sys.executable, "-m", "reproduce.sweep", "--profile", "smoke", "--domains", "Hopper",
           "--algos", "trpo", "--seeds", "3", "--workers", "1", "--backend", "local",
           "--results", str(results), "--no-progress", "--set", "max_steps=200000"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    first = specs[0].run_dir(results)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            csv = first / "progress.csv"
            if csv.is_file() and len(csv.read_text().splitlines()) >= 2:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for spec in specs[1:]:
        assert not spec.run_dir(results).exists(), out  # never started
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "to train: 3 runs" in out  # the plan was printed before training
    assert "stopped by SIGTERM" in out and "1 interrupted" in out and "2 not started" in out
    assert not (first / LOCK).exists() and not (first / DONE).exists()
    assert any((first / "checkpoint").iterdir())
    assert "[reproduce] interrupted after" in (first / "log.txt").read_text()


def test_resumed_log_of_older_code_gains_the_new_columns(tmp_path):
    """A run begun before columns were added (issue 14's critic statistics) resumes: the
    file is rewritten under the new header, the earlier rows blank in the new columns."""
    from qprop_tf.logger import RunLogger

    old = RunLogger(tmp_path, tensorboard=False)
    for i in range(3):
        old.log({"iteration": i, "critic_loss": 0.1 * i, "time": 1.0})
    old.close()
    log = RunLogger(tmp_path, tensorboard=False, resume_rows=2)
    log.log({"iteration": 2, "critic_loss": 0.5, "critic_diverged": 0, "time": 2.0})
    log.log({"iteration": 3, "critic_loss": 0.6, "critic_diverged": 1, "time": 3.0})
    log.close()
    df = pd.read_csv(tmp_path / "progress.csv")
    assert list(df.columns) == ["iteration", "critic_loss", "critic_diverged", "time"]
    assert list(df.iteration) == [0, 1, 2, 3] and list(df.critic_loss) == [0, 0.1, 0.5, 0.6]
    assert df.critic_diverged.isna().tolist() == [True, True, False, False]


def _relay_then_exit(stop) -> None:  # a run process that ends while its relay thread waits
    import threading as th

    from reproduce.backends import _relay_stop

    th.Thread(target=_relay_stop, args=(stop,), daemon=True).start()
    time.sleep(1.0)


def test_the_stop_signal_does_not_hang_after_a_run_process_ended():
    """The sweep's stop Event is set from its signal handler after some run processes have
    ended. With a relay blocked in Event.wait(), set() waited forever for the dead waiter
    (the campaign's sweep hung on SIGTERM); the relay polls, so set() returns at once."""
    import multiprocessing as mp
    import threading as th

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_relay_then_exit, args=(stop,))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    setter = th.Thread(target=stop.set, daemon=True)
    setter.start()
    setter.join(10)
    assert not setter.is_alive(), "stop.set() hangs on a dead waiter"


def test_a_blown_up_statistic_is_logged_not_fatal(tmp_path):
    """TRPO at batch 1000 on Swimmer (bestbatch seed 1) reached advantage_std 3.7e38: finite,
    beyond float32, and TensorBoard's scalar raised, killing the run. The CSV keeps it."""
    from qprop_tf.logger import RunLogger

    log = RunLogger(tmp_path, tensorboard=True)
    log.log({"iteration": 0, "env_steps": 1000, "advantage_std": 3.710048545876392e38,
             "explained_variance": -121.7, "critic_loss": float("nan")})
    log.close()
    df = pd.read_csv(tmp_path / "progress.csv")
    assert df.advantage_std.iloc[0] == 3.710048545876392e38 and df.iteration.iloc[0] == 0


def test_a_run_resumed_elsewhere_records_every_machine(tmp_path):
    """config.json's ``machines`` keeps each machine a run ran on, once, oldest first."""
    here = {"cpu": "CPU A", "cores": 2, "platform": "Linux", "python": "3.11.9"}
    there = {**here, "cpu": "CPU B"}
    assert machines_so_far(tmp_path, here) == [here]  # a new run
    (tmp_path / "config.json").write_text(json.dumps({"machines": [here]}))
    assert machines_so_far(tmp_path, here) == [here]
    assert machines_so_far(tmp_path, there) == [here, there]
    (tmp_path / "config.json").write_text(json.dumps({"config": {}}))  # written by older code
    assert machines_so_far(tmp_path, there) == [there]
