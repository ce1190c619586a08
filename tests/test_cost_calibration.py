"""The cost model's calibration against the runs' own CPU time (reproduce.cost_calibration)."""

import json
import tomllib

import pandas as pd
import pytest

import reproduce.cost as cost
from reproduce.cost import rate
from reproduce.cost_calibration import calibration, main, measured_rates, rates_toml


def _run(root, profile, domain, algo, seed, steps, cpu, machines=None):
    d = root / profile / "runs" / domain / algo / f"seed{seed}"
    d.mkdir(parents=True)
    if machines is not None:
        (d / "config.json").write_text(json.dumps({"machines": [{"cpu": m} for m in machines]}))
    (d / "spec.json").write_text(json.dumps({"domain": domain, "algo": algo, "seed": seed,
                                             "base_algo": algo.split("-b")[0]}))
    cols = {"env_steps": [steps // 2, steps], "time": [1.0, 2.0]}  # as every progress.csv
    if cpu is not None:
        cols["cpu_time"] = [cpu / 2, cpu]
    pd.DataFrame(cols).to_csv(d / "progress.csv", index=False)


def test_rates_per_cell_count_each_run_once_and_only_the_models_algorithms(tmp_path, capsys):
    a, b = tmp_path / "campaign", tmp_path / "results"
    _run(a, "table1", "Hopper", "trpo", 0, 1_000_000, 100.0)     # 10,000 steps per CPU-s
    _run(a, "table1", "Hopper", "trpo", 1, 900_000, 300.0)       # 3,000
    _run(b, "table1", "Hopper", "trpo", 1, 900_000, 300.0)       # the collected copy
    _run(a, "bestbatch", "Hopper", "trpo", 1, 900_000, 300.0)    # linked into another tree
    _run(a, "table1", "Hopper", "trpo", 2, 800_000, 200.0)       # 4,000
    _run(a, "bestbatch", "Hopper", "trpo-b1000", 0, 500_000, 50.0)  # not the model's batch
    _run(a, "table1", "Hopper", "ddpg", 0, 100_000, None)         # no cpu_time: wall only
    _run(a, "table1", "Reacher", "qprop-c", 0, 50_000, 10.0)      # start-up dominated
    runs = measured_rates([a, b])
    assert sorted(runs["seed"]) == [0, 1, 2] and set(runs["algo"]) == {"trpo"}
    cal = calibration(runs).set_index(["cpu", "algo", "domain"])
    row = cal.loc[("unrecorded", "trpo", "Hopper")]
    assert row["runs"] == 3 and row["median"] == pytest.approx(4000.0)
    assert (row["min"], row["max"]) == (3000.0, 10000.0)
    assert row["measured_over_model"] == pytest.approx(
        4000.0 / rate("trpo", "Hopper", "unrecorded"))
    out = tmp_path / "cal.md"
    assert main(["--roots", str(a), str(b), "--out", str(out)]) == 0
    assert "| unrecorded | trpo | Hopper | 3 | 4,000 [3,000–10,000] |" in out.read_text()


def test_rates_from_different_cpus_never_share_a_median(tmp_path, capsys):
    model = rate("qprop-c", "Humanoid", "Xeon")  # neither name has a [rates_cpu] table
    assert rate("qprop-c", "Humanoid", "EPYC") == model
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 0, int(model * 1000), 1000.0, ["Xeon"])
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 1, int(model * 1350), 1000.0, ["EPYC"])
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 2, int(model * 1200), 1000.0,
         ["Xeon", "EPYC", "Xeon"])  # resumed across machines: a CPU of its own
    cal = calibration(measured_rates([tmp_path])).set_index("cpu")
    assert sorted(cal.index) == ["EPYC", "Xeon", "Xeon + EPYC"]
    assert (cal["runs"] == 1).all()
    assert cal.loc["EPYC", "measured_over_model"] == pytest.approx(1.35, rel=1e-3)
    assert cal.loc["Xeon", "measured_over_model"] == pytest.approx(1.0, rel=1e-3)
    assert main(["--roots", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "- EPYC: 1.35 (1 cells)" in text and "- Xeon: 1.00 (1 cells)" in text


def test_bad_roots_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--roots", str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "no such directory" in capsys.readouterr().err
    assert main(["--roots", str(tmp_path)]) == 1
    assert "no run of trpo, qprop-c or ddpg" in capsys.readouterr().err


def _model(monkeypatch, cpu_tables: dict) -> None:
    monkeypatch.setattr(cost, "profiles_file", lambda: {
        "rates": {"trpo": {"default": 9000, "Hopper": 7800},
                  "qprop": {"default": 5000, "Humanoid": 1000}},
        "rates_cpu": cpu_tables})


def test_a_cpu_table_replaces_the_rates_for_its_domains_on_that_cpu_only(monkeypatch):
    _model(monkeypatch, {"Zen": {"qprop": {"Humanoid": 1430}, "trpo": {"Ant": 4810}}})
    monkeypatch.setattr(cost, "this_cpu", lambda: "Zen")
    assert rate("qprop-c", "Humanoid") == 1430          # this machine's table
    assert rate("qprop", "Humanoid") == 1430            # the family's, for every variant
    assert rate("trpo", "Ant") == 4810
    assert rate("trpo", "Hopper") == 7800               # a domain it lacks: [rates]
    assert rate("trpo", "Swimmer") == 9000              # ... or [rates]'s default
    assert rate("qprop-c", "Humanoid", "Xeon") == 1000  # another CPU: [rates]
    monkeypatch.setattr(cost, "this_cpu", lambda: "Xeon")
    assert rate("qprop-c", "Humanoid") == 1000 and rate("trpo", "Ant") == 9000


def test_the_toml_snippet_is_what_the_cost_model_reads_back(tmp_path, monkeypatch, capsys):
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 0, 1_430_000, 1000.0, ["Zen"])
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 1, 1_500_000, 1000.0, ["Zen"])
    _run(tmp_path, "table1", "Humanoid", "qprop-c", 2, 1_360_000, 1000.0, ["Zen"])
    _run(tmp_path, "table1", "Ant", "trpo", 0, 4_813_000, 1000.0, ["Zen"])
    _run(tmp_path, "table1", "Ant", "trpo", 1, 9_000_000, 1000.0, ["Xeon"])
    cal = calibration(measured_rates([tmp_path]))
    snippet = rates_toml(cal, "Zen", "cmd")
    tables = tomllib.loads(snippet)["rates_cpu"]
    assert tables == {"Zen": {"qprop": {"Humanoid": 1430}, "trpo": {"Ant": 4810}}}
    assert "Humanoid = 1430" in snippet and "# 3 run(s), 1,360-1,500" in snippet
    assert rates_toml(cal, "nowhere", "cmd") == ""
    _model(monkeypatch, tables)
    monkeypatch.setattr(cost, "this_cpu", lambda: "Zen")
    assert rate("qprop-c", "Humanoid") == 1430 and rate("trpo", "Ant") == 4810
    # the report compares each run with the model for its own CPU
    cal = calibration(measured_rates([tmp_path])).set_index(["cpu", "algo", "domain"])
    assert cal.loc[("Zen", "qprop-c", "Humanoid"), "model"] == 1430
    assert cal.loc[("Xeon", "trpo", "Ant"), "model"] == 9000
    monkeypatch.setattr("reproduce.cost_calibration.cpu_model", lambda: "Zen")
    assert main(["--roots", str(tmp_path), "--toml"]) == 0
    assert '[rates_cpu."Zen".qprop]' in capsys.readouterr().out
    monkeypatch.setattr("reproduce.cost_calibration.cpu_model", lambda: "Elsewhere")
    assert main(["--roots", str(tmp_path), "--toml"]) == 0
    assert "no run of this machine's CPU (Elsewhere)" in capsys.readouterr().out
