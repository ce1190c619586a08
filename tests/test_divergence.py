"""The divergence rule (qprop_tf.divergence) on synthetic TD losses."""

import numpy as np
import pandas as pd

from qprop_tf.divergence import (
    DivergenceMonitor,
    diverged_stretches,
    divergence_flags,
    divergence_summary,
    during_divergence,
    exceeds_running_median,
    progress_divergence,
)


def _progress(losses, batch=5000, with_flags=None):
    n = len(losses)
    df = pd.DataFrame({"iteration": np.arange(n), "env_steps": batch * (np.arange(n) + 1),
                       "batch_steps": np.full(n, batch), "critic_loss": losses})
    if with_flags is not None:
        df["critic_diverged"] = with_flags
    return df


def test_rule_by_hand():
    healthy = np.array([0.1, 0.2, 0.1, 0.3, 0.1])  # median 0.1
    assert not exceeds_running_median(9.9, healthy)
    assert exceeds_running_median(10.1, healthy)
    assert not exceeds_running_median(1e9, healthy[:4])  # warm-up: fewer than 5
    assert not exceeds_running_median(float("nan"), healthy)
    assert exceeds_running_median(float("inf"), healthy)


def test_flags_a_blow_up_and_keep_flagging_while_it_lasts():
    rng = np.random.default_rng(0)
    calm = 0.1 * np.exp(rng.normal(0, 0.3, 40))
    blow = 1e3 * np.exp(rng.normal(0, 0.5, 60))  # lasts longer than the calm part before it
    losses = np.concatenate([[np.nan], calm, blow, [0.2, 0.15]])
    flags = divergence_flags(losses)
    assert not flags[:41].any()
    assert flags[41:101].all()  # the yardstick is the healthy median: it does not drift up
    assert not flags[101:].any()  # back to normal
    # over all earlier losses, the median would have climbed and unflagged the end of it
    allmed = [losses[k] > 100 * np.nanmedian(losses[:k]) for k in range(41, 101)]
    assert not all(allmed)


def test_a_loss_that_grows_with_the_returns_is_not_flagged():
    # Walker-like: the TD loss follows the value scale up 40x over the run
    losses = np.linspace(1.0, 40.0, 300) * np.exp(np.random.default_rng(1).normal(0, 0.2, 300))
    assert not divergence_flags(losses).any()
    assert divergence_flags(np.r_[losses, 5e4]).sum() == 1


def test_spikes_during_warm_up_are_not_flagged():
    assert not divergence_flags([0.01, 50.0, 0.02, 0.03, 100.0]).any()


def test_monitor_state_round_trip_continues_identically():
    losses = np.r_[np.full(10, 0.1), 50.0, 0.1, 30.0, 0.2]
    a = DivergenceMonitor()
    first = [a.update(x) for x in losses[:7]]
    b = DivergenceMonitor()
    b.set_state(a.get_state())
    assert [a.update(x) for x in losses[7:]] == [b.update(x) for x in losses[7:]]
    assert first + [b.update(x) for x in []] == list(divergence_flags(losses)[:7])
    c = DivergenceMonitor()
    c.set_state({})  # a checkpoint of older code: starts empty
    assert c.healthy == []


def test_stretches_from_the_column_or_recomputed_from_the_loss():
    losses = np.r_[np.full(8, 0.1), 20.0, 30.0, 0.1, 0.1, 50.0, 0.1]
    flags = divergence_flags(losses)
    assert list(np.flatnonzero(flags)) == [8, 9, 12]
    recomputed = diverged_stretches(_progress(losses))
    logged = diverged_stretches(_progress(np.full(14, 0.1), with_flags=flags.astype(int)))
    assert recomputed == logged  # the column wins over the loss when it is there
    assert [(s.first, s.last, s.steps_from, s.steps_to) for s in recomputed] == [
        (8, 9, 40000, 50000), (12, 12, 60000, 65000)]
    assert recomputed[0].iterations == 2
    # a run resumed by newer code: the column is blank before the resume -> recomputed
    blank = np.r_[np.full(10, np.nan), np.zeros(4)]
    assert diverged_stretches(_progress(losses, with_flags=blank)) == recomputed
    assert during_divergence(recomputed, 45000) and during_divergence(recomputed, 65000)
    assert not during_divergence(recomputed, 40000) and not during_divergence(recomputed, 55000)
    assert divergence_summary(_progress(losses)) == {
        "critic_diverged_iterations": 3, "critic_diverged_stretches": 2,
        "first_diverged_iteration": 8, "first_diverged_env_steps": 45000}


def test_runs_without_a_critic_or_a_file(tmp_path):
    df = _progress(np.zeros(3)).drop(columns=["critic_loss"])
    assert diverged_stretches(df) == []
    assert progress_divergence(tmp_path / "missing.csv") == {}
    df.to_csv(tmp_path / "p.csv", index=False)
    assert progress_divergence(tmp_path / "p.csv") == {}
    _progress(np.r_[np.full(6, 0.1), 1e3]).to_csv(tmp_path / "q.csv", index=False)
    assert progress_divergence(tmp_path / "q.csv")["first_diverged_env_steps"] == 35000
