"""What policies that learn nothing earn (reproduce.reference_returns), and its lines on the
learning curves (reproduce.plot)."""

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from qprop_tf.errors import ConfigError
from reproduce.plot import draw_reference, label_reference
from reproduce.plot_style import plt
from reproduce.reference_returns import (
    episode_return,
    load_reference,
    main,
    reference_returns,
    summary,
)


def test_a_zero_action_episode_is_the_envs_own_rollout_with_that_seed():
    env = gym.make("Reacher-v5")
    env.reset(seed=3)
    total, steps, done = 0.0, 0, False
    while not done:
        _, r, term, trunc, _ = env.step(np.zeros(2))
        total, steps, done = total + r, steps + 1, term or trunc
    assert episode_return("Reacher", "zero action", 3) == (pytest.approx(total, abs=1e-12), steps)
    assert steps == 50  # Reacher's time limit: a whole episode


def test_random_episodes_are_a_function_of_the_episode_index():
    a = episode_return("Reacher", "uniform random", 1)
    assert episode_return("Reacher", "uniform random", 1) == a
    assert episode_return("Reacher", "uniform random", 2) != a
    assert episode_return("Reacher", "zero action", 1) != a


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="unknown domain.*Walker2D.*valid: Ant"):
        reference_returns(["Walker2D"], 1, progress=False)
    with pytest.raises(ConfigError, match="episodes must be >= 1"):
        reference_returns(["Reacher"], 0, progress=False)
    with pytest.raises(ConfigError, match="unknown reference policy 'still'"):
        episode_return("Reacher", "still", 0)


def test_the_cli_writes_the_rows_and_a_report_the_plot_reads(tmp_path, capsys):
    assert load_reference(tmp_path) is None
    assert main(["--domains", "Reacher", "--episodes", "2", "--no-progress",
                 "--out", str(tmp_path / "reference_returns")]) == 0
    df = pd.read_csv(tmp_path / "reference_returns.csv")
    assert len(df) == 4 and set(df["policy"]) == {"zero action", "uniform random"}
    assert df["return"].iloc[0] == pytest.approx(episode_return("Reacher", "zero action", 0)[0],
                                                 abs=1e-5)
    md = (tmp_path / "reference_returns.md").read_text()
    assert "| Reacher | Reacher-v5 | -7 |" in md and "(50 steps, 2 episodes)" in md
    assert "python -m reproduce.reference_returns --domains Reacher" in md
    s = load_reference(tmp_path)
    assert s is not None and len(s) == 2
    zero = s[s["policy"] == "zero action"].iloc[0]
    assert zero["mean"] == pytest.approx(df[df["policy"] == "zero action"]["return"].mean())


def _refs():
    return summary(pd.DataFrame({"domain": ["Reacher"] * 2 + ["Hopper"] * 2,
                                 "policy": ["zero action", "uniform random"] * 2,
                                 "episode": [0] * 4, "return": [-12.0, -43.0, 150.0, 20.0],
                                 "length": [50, 50, 150, 20]}))


def test_the_domains_lines_are_drawn_and_labelled_clear_of_the_paper_notes():
    fig, ax = plt.subplots()
    rows = draw_reference(ax, "Reacher", _refs())
    assert sorted(line.get_ydata()[0] for line in ax.lines) == [-43.0, -12.0]  # not Hopper's
    ax.set_ylim(-60, 0)
    label_reference(ax, rows, -7.0, notes=0)
    labels = {t.get_text(): t.xy[0] for t in ax.texts}
    assert labels == {"uniform random: -43": 0.99, "zero action: -12": 0.99}
    for t in list(ax.texts):
        t.remove()
    label_reference(ax, rows, -7.0, notes=1)  # a "paper crosses at" note under the threshold
    labels = {t.get_text(): t.xy[0] for t in ax.texts}
    assert labels == {"uniform random: -43": 0.99, "zero action: -12": 0.01}
    plt.close(fig)
    fig, ax = plt.subplots()
    draw_reference(ax, "Reacher", None)
    assert not ax.lines
    plt.close(fig)
