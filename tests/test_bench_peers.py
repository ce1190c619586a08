"""The peer benchmark's summary, ratios and markdown (no torch, no training)."""

import pytest

from reproduce.bench.peers import OURS, ratios, render_markdown, sb3_impl, summarise


def _rows():
    rows = []
    for rnd, (ours, sb3) in enumerate([(8000.0, 2000.0), (6000.0, 3000.0), (7000.0, 2500.0)], 1):
        rows.append({"round": rnd, "impl": OURS, "steps": 50100, "construct_s": None,
                     "train_s": 50100 / ours, "steps_per_s": ours,
                     "steps_per_s_after_first": ours * 1.2})
        rows.append({"round": rnd, "impl": sb3_impl(5000), "steps": 50000, "construct_s": 0.8,
                     "train_s": 50000 / sb3, "steps_per_s": sb3,
                     "steps_per_s_after_first": sb3 * 1.1})
    return rows


def test_summary_medians_and_ratio():
    s = summarise(_rows())
    assert list(s) == [OURS, "sb3 bs5000"]
    assert s[OURS]["steps_per_s"] == 7000.0 and s[OURS]["runs"] == 3
    assert s["sb3 bs5000"]["steps_per_s"] == 2500.0
    r = ratios(s)
    assert r["sb3 bs5000"]["steps_per_s"] == pytest.approx(2.8)
    assert r["sb3 bs5000"]["steps_per_s_after_first"] == pytest.approx(2.8 * 1.2 / 1.1)


def test_markdown_has_command_runs_and_ratio():
    versions = {"python": "3.11.9", "tensorflow": "2.21.0", "keras": "3.15.1",
                "gymnasium": "1.4.0", "mujoco": "4.0.0", "numpy": "2.4.6", "torch": "2.13.0+cpu",
                "stable_baselines3": "2.9.2", "sb3_contrib": "2.9.2",
                "peer_gymnasium": "1.4.0", "peer_mujoco": "4.0.0", "peer_numpy": "2.4.6"}
    meta = {"date": "2026-11-25T00:00:00+00:00", "cpu": "test cpu", "cores": 2,
            "load_before": 1.0, "load_after": 2.0, "env": "Hopper-v5", "n_steps": 5000,
            "steps": 50000, "rounds": 3, "versions": versions,
            "command": "make bench-peers  (python -m reproduce.bench.peers)"}
    md = render_markdown(meta, _rows())
    assert "`make bench-peers  (python -m reproduce.bench.peers)`" in md
    assert "torch 2.13.0+cpu" in md and "sb3-contrib 2.9.2" in md
    assert md.count("| ours | 50,100 | (in train s) |") == 3
    assert md.count("| sb3 bs5000 | 50,000 | 0.80 |") == 3
    assert "| sb3 bs5000 | 3 | 2,500 | 2,750 | 2.80 | 3.05 |" in md
