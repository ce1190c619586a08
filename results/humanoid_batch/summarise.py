"""Print README.md's table and draw ``humanoid_batch.png``: on Humanoid at the authors' action
scale (``action_scale=unit``), TRPO at Q-Prop's batch of 5000 steps (the pilot runs here)
against TRPO at Table 1's 25000 and TR-c-Q-Prop at 5000, over the pilots' env steps. Run
from the checkout:

    .venv/bin/python results/humanoid_batch/summarise.py [--write | --check]

``--write`` also puts the report into README.md between its ``summarise:begin`` and
``summarise:end`` markers (nothing else there is touched); ``--check`` draws nothing and exits
1 when README.md's report is not what the runs give now (``tests/test_readme_table.py``).
The Table 1 runs are read from ``results/table1/runs`` once finished, else from the progress
``make campaign-collect`` parks in ``results/table1/inflight``; TR-c-Q-Prop's seed 1 is the
3M-step pilot of ``results/action_scale`` (the same settings, before ``unit`` became the
default), until the campaign's own seed 1 has run that far. TR-c-Q-Prop with its analytic
term divided by the learning signal's std (``qprop-c-scaled``, the ``humanoid-analytic``
profile) is read the same way from ``results/humanoid-analytic``, and TR-c-Q-Prop with the
critic's reward scale 0.1 and 0.01 (the authors' ``scale_reward``) from
``results/humanoid-rscale``, once their runs exist.

The right panel is each run's final policy std per action (``policy.npz``, relative to the
initial 1.0 in [-1, 1] units), at the env steps where that run ended.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import bootstrap, mannwhitneyu  # noqa: E402

HERE = Path(__file__).parent
RESULTS = HERE.parent
ROLL = 10  # batches in the curves' moving mean (5000 steps each; 2 for batch 25000)
README = HERE / "README.md"
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if sys.argv[2:] or mode not in ("", "--write", "--check"):
    raise SystemExit("usage: summarise.py [--write | --check]")
BEGIN, END = "<!-- summarise:begin -->", "<!-- summarise:end -->"
report: list[str] = []


def say(line: str = "") -> None:
    """Print ``line`` (not under ``--check``) and keep it for README.md's report."""
    if mode != "--check":
        print(line)
    report.append(line)


def readme_with(lines: list[str]) -> str:
    """README.md with ``lines`` between its markers (an error if they are missing)."""
    text = README.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"{README}: needs one {BEGIN} line before one {END} line")
    head, rest = text.split(BEGIN)
    tail = rest.split(END)[1]
    return head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail


def campaign_run(algo: str, seed: int, profile: str = "table1") -> Path | None:
    for sub in ("runs", "inflight"):
        p = RESULTS / f"{profile}/{sub}/Humanoid/{algo}/seed{seed}/progress.csv"
        if p.is_file():
            return p
    return None


def final_std(progress: Path) -> np.ndarray | None:
    """A finished run's policy std per action dim, in the agent's [-1, 1] units."""
    f = progress.parent / "policy.npz"
    if not (progress.parent / "DONE").is_file() or not f.is_file():
        return None
    z = np.load(f)
    return np.exp(z["log_std"]) / z["scale"]


def qprop_seed1(last: int) -> Path | None:
    own = campaign_run("qprop-c", 1)
    if own is not None and pd.read_csv(own).env_steps.iloc[-1] >= last:
        return own
    return RESULTS / "action_scale/Humanoid/qprop-c-unit/seed1/progress.csv"


SEEDS = (0, 1, 2)
JOINTS = ("abdomen_y", "abdomen_z", "abdomen_x", "right_hip_x", "right_hip_z", "right_hip_y",
          "right_knee", "left_hip_x", "left_hip_z", "left_hip_y", "left_knee",
          "right_shoulder1", "right_shoulder2", "right_elbow", "left_shoulder1",
          "left_shoulder2", "left_elbow")  # Humanoid-v5's actuators, in action order
pilots = {s: HERE / f"Humanoid/trpo-b5000/seed{s}/progress.csv" for s in SEEDS}
pilots = {s: p for s, p in pilots.items() if (p.parent / "DONE").is_file()}
if not pilots:
    raise SystemExit("no finished pilot run under results/humanoid_batch/Humanoid/trpo-b5000")
last = min(int(pd.read_csv(p).env_steps.iloc[-1]) for p in pilots.values())
Q, T5, T25 = ("TR-c-Q-Prop, batch 5000 (Table 1)", "TRPO, batch 5000 (pilot)",
              "TRPO, batch 25000 (Table 1)")
QS = "TR-c-Q-Prop, analytic term / std(l) (humanoid-analytic)"
R1, R2 = ("TR-c-Q-Prop, critic reward scale 0.1 (humanoid-rscale)",
          "TR-c-Q-Prop, critic reward scale 0.01 (humanoid-rscale)")
rows = {(Q, s): qprop_seed1(last) if s == 1 else campaign_run("qprop-c", s) for s in SEEDS}
rows |= {(T5, s): p for s, p in pilots.items()}
rows |= {(T25, s): campaign_run("trpo", s) for s in SEEDS}
rows |= {(QS, s): campaign_run("qprop-c-scaled", s, "humanoid-analytic") for s in SEEDS}
rows |= {(R1, s): campaign_run("qprop-c-r0.1", s, "humanoid-rscale") for s in SEEDS[:2]}
rows |= {(R2, s): campaign_run("qprop-c-r0.01", s, "humanoid-rscale") for s in SEEDS[:2]}

say(f"Humanoid-v5, actions in [-1, 1] (the authors' scale), the first {last:,} env steps; "
    "average return of the training batches")
say()
say("| algorithm, batch | seed | mean, 1st quarter | 2nd | 3rd | 4th | max | mean of the last "
    "100k steps | policy std at the end | updates |")
say("|---|---|---|---|---|---|---|---|---|---|")
curves, tails, stds = [], {}, {}
for (name, seed), path in rows.items():
    d = pd.read_csv(path) if path is not None and path.is_file() else None
    std = final_std(path) if d is not None else None
    if std is not None:
        stds[(name, seed)] = (std, int(d.env_steps.iloc[-1]))
    # not run (that far) yet; a finished 3M-step pilot counts whole although its last batch may
    # end a few hundred steps before the TRPO pilots' shortest (3,000,251 against 3,001,047)
    finished = d is not None and (path.parent / "DONE").is_file() and d.env_steps.iloc[-1] >= 3e6
    if d is None or (d.env_steps.iloc[-1] < last and not finished):
        say(f"| {name} | {seed} | (no run to {last:,} steps yet) |||||||")
        continue
    w = d[d.env_steps <= last]
    quarters = [w[(w.env_steps > a * last) & (w.env_steps <= (a + 0.25) * last)]
                .average_return.mean() for a in (0, 0.25, 0.5, 0.75)]
    tail = w[w.env_steps > last - 100_000].average_return.mean()
    tails.setdefault(name, []).append(tail)
    say(f"| {name} | {seed} | " + " | ".join(f"{q:.1f}" for q in quarters)
        + f" | {w.average_return.max():.1f} | {tail:.1f} | {w.policy_std.iloc[-1]:.4f} | "
        f"{len(w)} |")
    batch = w.env_steps.diff().median()
    roll = max(1, round(ROLL * 5000 / batch))
    curves.append(pd.DataFrame({"env steps (M)": w.env_steps / 1e6,
                                "return": w.average_return.rolling(roll, min_periods=1).mean(),
                                "policy std": w.policy_std, "run": name, "seed": seed}))

say()
say("The mean of the last 100k steps, seed by seed; one-sided Mann-Whitney U (exact), "
    "TR-c-Q-Prop (Table 1) above each other arm:")
say()
for other in (T5, T25, QS, R1, R2):
    if len(tails.get(Q, [])) and len(tails.get(other, [])):
        u = mannwhitneyu(tails[Q], tails[other], alternative="greater", method="exact")
        say(f"- {Q} {[round(x) for x in tails[Q]]} against {other} "
            f"{[round(x) for x in tails[other]]}: U = {u.statistic:.0f}, p = {u.pvalue:.3f}")
        ratio = np.mean(tails[Q]) / np.mean(tails[other])
        if min(len(tails[Q]), len(tails[other])) < 2:  # nothing to resample on one side
            say(f"  ratio of the means {ratio:.2f} (no bootstrap CI: one seed on a side)")
            continue
        ci = bootstrap((tails[Q], tails[other]), lambda a, b: np.mean(a) / np.mean(b),
                       n_resamples=9999, method="percentile", vectorized=False,
                       random_state=0).confidence_interval
        say(f"  ratio of the means {ratio:.2f}, "
            f"bootstrap 95% CI [{ci.low:.2f}, {ci.high:.2f}] (seeds resampled within "
            "each; with 2-3 seeds a side the CI is only as wide as the seeds are apart)")
for a, b in ((T5, T25), (QS, T5)):
    if len(tails.get(a, [])) and len(tails.get(b, [])):
        u = mannwhitneyu(tails[a], tails[b], alternative="two-sided", method="exact")
        say(f"- {a} against {b} (two-sided): U = {u.statistic:.0f}, p = {u.pvalue:.3f}")
say()
say("The policy std per action at each finished run's end (policy.npz; initial 1.0):")
say()
say("| run | seed | env steps | " + " | ".join(JOINTS) + " |")
say("|---|---|---|" + "---|" * len(JOINTS))
for (name, seed), (std, steps) in sorted(stds.items()):
    say(f"| {name} | {seed} | {steps:,} | " + " | ".join(f"{x:.2f}" for x in std) + " |")
if mode == "--check":
    if readme_with(report) != README.read_text():
        raise SystemExit(f"{README}: its report is stale; run summarise.py --write")
    raise SystemExit(0)
if mode == "--write":
    README.write_text(readme_with(report))
    print(f"\nwrote the report into {README}")

df = pd.concat(curves)
fig, axes = plt.subplots(1, 3, figsize=(19, 4.6))
colors = {T5: "tab:orange", T25: "tab:red", Q: "tab:blue", QS: "tab:green",
          R1: "tab:purple", R2: "tab:brown"}
for (name, seed), g in df.groupby(["run", "seed"]):
    style = ("-", "--", ":")[seed]
    axes[0].plot(g["env steps (M)"], g["return"], style, color=colors[name],
                 label=f"{name}, seed {seed}")
    axes[1].plot(g["env steps (M)"], g["policy std"], style, color=colors[name])
axes[0].set(xlabel="env steps (M)", ylabel="average return (moving mean of 50k steps)",
            title="Humanoid-v5, authors' action scale")
axes[1].set(xlabel="env steps (M)", ylabel="policy std (mean over action dims)",
            title="exploration noise")
for (name, seed), (std, steps) in sorted(stds.items()):
    axes[2].plot(range(len(std)), std, "o" + ("-", "--", ":")[seed], color=colors[name],
                 ms=3, lw=0.8, label=f"{name.split(' (')[0]}, seed {seed}: {steps / 1e6:.1f}M")
axes[2].set_xticks(range(len(JOINTS)), JOINTS, rotation=90, fontsize=7)
axes[2].set(ylabel="policy std at the run's end (initial 1.0)",
            title="exploration noise per action, where each run ended")
axes[2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))  # off the data
axes[0].legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below
fig.tight_layout()
fig.savefig(HERE / "humanoid_batch.png", dpi=110, metadata={"Software": None})
print(f"\nwrote {HERE / 'humanoid_batch.png'}")
