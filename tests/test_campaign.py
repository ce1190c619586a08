"""The campaign's ledger, its collect step and its per-profile pins and sweeps, on synthetic
roots (no training: a throwaway git repository for the pins, a fake launch for the sweeps)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from qprop_tf.rundir import DONE, LOCK, proc_stat
from reproduce import campaign, campaign_drain, campaign_park, campaign_pins
from reproduce.campaign_losses import RESTARTED
from reproduce.cost import run_hours, startup_hours
from reproduce.ledger import cells, ledger, machine_slowdown
from reproduce.ledger import main as ledger_main
from reproduce.spec import resolve_runs


def _write_run(run_dir: Path, steps: int, seconds: float, done: bool = False,
               log: str = "", lock_pid: int | None = None, cpu: float | None = None) -> None:
    run_dir.mkdir(parents=True)
    columns = {"env_steps": [steps // 2, steps], "time": [seconds / 2, seconds]}
    if cpu is not None:
        columns["cpu_time"] = [cpu / 2, cpu]
    pd.DataFrame(columns).to_csv(run_dir / "progress.csv", index=False)
    (run_dir / "config.json").write_text(json.dumps({"git_commit": "abcdef0123"}))
    (run_dir / "log.txt").write_text(log)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "state.bin").write_bytes(b"x")
    if done:
        (run_dir / DONE).write_text("{}")
    if lock_pid is not None:
        (run_dir / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": lock_pid}))


@pytest.fixture
def root(tmp_path: Path) -> tuple[Path, list]:
    specs = resolve_runs("smoke")  # 2 domains x 3 algos x 2 seeds
    r = tmp_path / "campaign"
    _write_run(specs[0].run_dir(r), 1000, 36.0, done=True)
    _write_run(specs[1].run_dir(r), 500, 18.0, lock_pid=os.getpid())  # a live sweep holds it
    _write_run(specs[2].run_dir(r), 500, 18.0, log="Traceback (most recent call last):\n")
    _write_run(specs[3].run_dir(r), 500, 18.0)  # killed: resumes next time
    _write_run(specs[11].run_dir(r), 400, 12.0, log="Traceback (most recent call last):\n"
               "qprop_tf.errors.NonFiniteError: non-finite value in iteration 3 update\n")
    return r, specs


def test_ledger_names_every_status_and_sums_hours(root):
    r, specs = root
    runs = ledger(specs, [r])
    assert list(runs["status"].iloc[:5]) == ["done", "in flight", "failed", "paused", "to go"]
    assert runs["status"].iloc[11] == "stopped (non-finite)"
    assert runs["hours_spent"].sum() == pytest.approx((36 + 18 * 3 + 12) / 3600)
    # a run that stopped on a non-finite value is a result: nothing left to run
    assert runs["hours_left"].iloc[11] == 0 and runs["hours_left_measured"].iloc[11] == 0
    # a run to go costs its whole estimate, a paused one what its budget has left, done none
    assert runs["hours_left"].iloc[4] == pytest.approx(run_hours(specs[4]))
    assert runs["hours_left"].iloc[0] == 0 and runs["hours_left"].iloc[2] == 0
    frac = 1 - 500 / specs[3].max_steps
    assert runs["hours_left"].iloc[3] == pytest.approx(run_hours(specs[3]) * frac)
    assert (runs["commit"].iloc[:4] == "abcdef0").all()
    c = cells(runs)
    assert len(c) == len({(s.domain, s.algo) for s in specs})
    assert c["hours_spent"].sum() == pytest.approx(runs["hours_spent"].sum())


def test_cpu_time_counts_when_logged_and_measured_rates_estimate_what_is_left(tmp_path):
    specs = resolve_runs("smoke")
    r = tmp_path / "campaign"
    a, b, c = specs[0], specs[1], specs[2]  # same domain, same algo, seeds 0 and 1; then another
    assert (a.domain, a.algo) == (b.domain, b.algo) and (c.domain, c.algo) != (a.domain, a.algo)
    _write_run(a.run_dir(r), a.max_steps, 100.0, done=True, cpu=50.0)  # shared cores: CPU < wall
    _write_run(b.run_dir(r), a.max_steps // 4, 30.0)  # older code: no cpu_time, wall counts
    runs = ledger(specs[:3], [r])
    assert runs["hours_spent"].tolist() == pytest.approx([50 / 3600, 30 / 3600, 0.0])
    # the cell's rate comes from its CPU-timed run alone (steps per CPU-hour)
    assert runs["cpu_timed"].tolist() == [True, False, False]
    rate = a.max_steps / (50 / 3600)
    assert runs["hours_left_measured"].iloc[0] == 0
    assert runs["hours_left_measured"].iloc[1] == pytest.approx(
        (b.max_steps - b.max_steps // 4) / rate)
    # a cell with no run yet: the cost model
    assert runs["hours_left_measured"].iloc[2] == pytest.approx(run_hours(c))
    assert cells(runs)["hours_left_measured"].sum() == pytest.approx(
        runs["hours_left_measured"].sum())
    # without a CPU-timed run, the cell's wall-timed runs give the rate
    runs = ledger(specs[1:2], [r])
    assert runs["hours_left_measured"].iloc[0] == pytest.approx(
        (b.max_steps - b.max_steps // 4) / ((b.max_steps // 4) / (30 / 3600)))
    # a CPU-timed unfinished run slower than its cell (another machine) counts at its own rate
    shutil.rmtree(b.run_dir(r))
    _write_run(b.run_dir(r), a.max_steps // 4, 60.0, cpu=40.0)  # 1/4 of a's steps, 4/5 its CPU
    own = (a.max_steps // 4) / (40 / 3600)
    assert own < rate
    runs = ledger(specs[:2], [r])
    assert runs["hours_left_measured"].iloc[1] == pytest.approx(
        (b.max_steps - a.max_steps // 4) / own)
    # a run to go in a finished cell runs at its cell's rate times this machine's slowdown,
    # which the unfinished runs measure against their cells' finished runs
    d, e = specs[2], specs[3]  # another cell: seed 0 finished, seed 1 to go
    assert (d.domain, d.algo) == (e.domain, e.algo) != (a.domain, a.algo)
    _write_run(d.run_dir(r), d.max_steps, 30.0, done=True, cpu=20.0)
    runs = ledger(specs[:4], [r])
    assert machine_slowdown(runs) == pytest.approx(own / rate)  # b against a: 0.3125
    d_rate = d.max_steps / (20 / 3600)
    assert runs["hours_left_measured"].iloc[3] == pytest.approx(
        e.max_steps / (d_rate * own / rate) + startup_hours())
    # with no unfinished run to measure it, or a faster machine, no slowdown
    shutil.rmtree(b.run_dir(r))
    assert machine_slowdown(ledger(specs[:4], [r])) == 1.0
    _write_run(b.run_dir(r), a.max_steps // 4, 6.0, cpu=5.0)  # 2.5 times a's rate
    runs = ledger(specs[:4], [r])
    assert machine_slowdown(runs) == 1.0
    assert runs["hours_left_measured"].iloc[3] == pytest.approx(
        e.max_steps / d_rate + startup_hours())


def test_a_stale_lock_is_not_in_flight(root):
    r, specs = root
    (specs[1].run_dir(r) / LOCK).write_text(json.dumps({"host": socket.gethostname(),
                                                         "pid": 2**22 + 12345}))
    assert ledger(specs[:2], [r])["status"].tolist() == ["done", "paused"]


def test_collect_copies_finished_runs_and_parks_unfinished_progress(root, tmp_path):
    r, specs = root
    results = tmp_path / "results"
    results.mkdir()
    assert campaign.collect("smoke", r, results) == 0
    assert not (results / "CAMPAIGN.md").exists()
    done = specs[0].run_dir(results)
    assert (done / DONE).is_file() and (done / "progress.csv").is_file()
    assert not (done / "checkpoint").exists() and not (done / LOCK).exists()
    for s in specs[1:4]:
        assert not s.run_dir(results).exists()  # never where the table reads
        parked = results / "smoke" / "inflight" / s.domain / s.algo / f"seed{s.seed}"
        assert (parked / "progress.csv").is_file()
    ledger_text = (results / "smoke" / "CAMPAIGN.md").read_text()
    assert "1 done, 1 stopped (non-finite), 1 in flight, 1 paused, 1 failed" in ledger_text
    figure = results / "smoke" / "figures" / "campaign.svg"  # the ledger as a picture
    assert figure.is_file() and (results / "smoke" / "figures" / "campaign.png").is_file()
    first = figure.read_bytes()
    campaign.collect("smoke", r, results)
    assert figure.read_bytes() == first  # nothing changed: the same bytes
    # once the run finishes, the next collect copies it and drops its parked progress
    (specs[3].run_dir(r) / DONE).write_text("{}")
    campaign.collect("smoke", r, results)
    assert (specs[3].run_dir(results) / DONE).is_file()
    assert figure.read_bytes() != first  # a paused run became a done one
    assert not (results / "smoke" / "inflight" / specs[3].domain / specs[3].algo
                / f"seed{specs[3].seed}").exists()


def test_seeding_copies_only_finished_committed_runs(root, tmp_path):
    r, specs = root
    results = tmp_path / "results"
    _write_run(specs[5].run_dir(results), 1000, 10.0, done=True)
    _write_run(specs[6].run_dir(results), 100, 1.0)  # unfinished: not copied
    assert campaign_park.seed_root(specs, results, r) == 1
    assert (specs[5].run_dir(r) / DONE).is_file() and not specs[6].run_dir(r).exists()


def test_repin_is_refused_while_runs_are_unfinished(root, repo):
    r, specs = root  # `repo`: a regression must not add a worktree to this checkout's repo
    (r / "smoke" / campaign.PIN).write_text(json.dumps({"commit": "0" * 40,
                                                         "worktree": str(r / "wt")}))
    with pytest.raises(campaign.CampaignError, match="cannot repin smoke: 3 unfinished"):
        campaign.pin_worktree(r, "smoke", specs, repin=True)
    # the run that stopped on a non-finite value is a result: it never resumes, so it does
    # not hold a repin (nor a drain) back; the in-flight, failed and paused ones do
    assert campaign_pins.unfinished(specs, r) == [s.key for s in specs[1:4]]


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    assert campaign.main(["collect", "--root", str(tmp_path / "nope")]) == 2
    assert campaign.main(["status", "--root", str(tmp_path), "--profile", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("campaign: ") for line in err)


# ---- one root, several profiles: each its own pin and sweep -----------------------------

def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


def _commit(repo: Path, text: str) -> str:
    (repo / "f.txt").write_text(text)
    _git(repo, "add", "f.txt")
    _git(repo, "commit", "-q", "-m", text)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway repository the campaign pins worktrees of, instead of this checkout."""
    r = tmp_path / "repo"
    r.mkdir()
    _git(r, "init", "-q")
    _commit(r, "one")
    monkeypatch.setattr(campaign_pins, "REPO_ROOT", r)
    return r


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """Record the sweeps `start` launches instead of training: (profile, worktree)."""
    calls: list[tuple[str, Path]] = []

    def fake_launch(profile: str, wt: Path, root: Path, workers: int,
                    nice: int) -> tuple[int, Path]:
        calls.append((profile, wt))
        return 2**22 + 4321, root / "logs" / f"campaign_{profile}_fake.out"  # no such process

    monkeypatch.setattr(campaign, "launch", fake_launch)
    return calls


def _start(root: Path, results: Path, *more: str) -> int:
    return campaign.main(["start", "--root", str(root), "--results", str(results), *more])


def test_profiles_pinned_at_different_commits_keep_their_own_worktrees(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    first = _git(repo, "rev-parse", "HEAD")
    assert _start(root, results, "--profile", "table1") == 0
    second = _commit(repo, "two")
    assert _start(root, results, "--profile", "stable") == 0
    assert _start(root, results, "--profile", "bestbatch") == 0  # same commit as stable
    pins = {p: campaign.read_pin(root, p) for p in ("table1", "stable", "bestbatch")}
    assert pins["table1"]["commit"] == first
    assert pins["stable"]["commit"] == pins["bestbatch"]["commit"] == second
    assert pins["stable"]["worktree"] == pins["bestbatch"]["worktree"]  # shared
    for p, pin in pins.items():
        assert (root / p / campaign.PIN).is_file() and (root / p / campaign.PID).is_file()
        assert _git(Path(pin["worktree"]), "rev-parse", "HEAD") == pin["commit"]
    assert not (root / campaign.PIN).exists() and not (root / campaign.PID).exists()
    assert [(p, str(wt)) for p, wt in launches] == [(p, pins[p]["worktree"]) for p in pins]
    # restarting every pinned profile keeps each at its own commit, HEAD having moved again
    _commit(repo, "three")
    assert _start(root, results) == 0
    assert sorted(str(wt) for _, wt in launches[3:]) == sorted(
        [pins["table1"]["worktree"], *2 * [pins["stable"]["worktree"]]])
    assert {p: campaign.read_pin(root, p) for p in pins} == pins
    assert campaign.pinned(root) == ["bestbatch", "stable", "table1"]
    out = capsys.readouterr().out
    assert out.count("campaign: stable: started") == 2 and "commit: " + second[:7] in out


def test_legacy_pin_and_pid_move_to_table1_and_its_sweep_stays_running(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    root.mkdir()
    head = _git(repo, "rev-parse", "HEAD")
    legacy = {"commit": head, "worktree": str(root / f"wt-{head[:7]}")}
    (root / campaign.PIN).write_text(json.dumps(legacy))
    live = os.getppid()  # a live "sweep": this test's parent (start never skips for its own)
    (root / campaign.PID).write_text(f"{live}\n")
    assert campaign.main(["status", "--root", str(root), "--results", str(results)]) == 0
    assert f"profile table1: sweep running (pid {live}" in capsys.readouterr().out
    assert not (root / campaign.PIN).exists() and not (root / campaign.PID).exists()
    assert campaign.read_pin(root, "table1") == legacy
    assert campaign.running_pid(root, "table1") == live
    assert _start(root, results) == 0
    assert launches == []  # no second table1 sweep
    out = capsys.readouterr().out
    assert "campaign: table1: already running, skipped" in out and str(live) in out
    # table1's own pin, once there, wins: a stray old one is left where it is
    (root / campaign.PIN).write_text(json.dumps({"commit": "0" * 40, "worktree": "x"}))
    assert campaign.pinned(root) == ["table1"]
    assert campaign.read_pin(root, "table1") == legacy


def test_start_all_restarts_pinned_profiles_and_skips_running_ones(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    assert _start(root, results) == 0  # nothing pinned yet: table1
    assert [p for p, _ in launches] == ["table1"]
    assert _start(root, results, "--profile", "stable") == 0
    (root / "table1" / campaign.PID).write_text(f"{os.getppid()}\n")  # table1 still running
    capsys.readouterr()
    assert _start(root, results, "--workers", "1") == 0
    assert [p for p, _ in launches] == ["table1", "stable", "stable"]
    out = capsys.readouterr().out
    assert "campaign: stable: started, 1 worker(s)" in out
    assert "campaign: table1: already running, skipped" in out
    # a drain's script execs into its start, which finds its own pid there: no sweep of
    # its, so it starts one (and its pid replaces the script's)
    (root / "table1" / campaign.PID).write_text(f"{os.getpid()}\n")
    assert _start(root, results, "--profile", "table1") == 0
    assert [p for p, _ in launches] == ["table1", "stable", "stable", "table1"]
    assert (root / "table1" / campaign.PID).read_text() == f"{2**22 + 4321}\n"
    assert "already running" not in capsys.readouterr().out
    assert campaign.main(["profiles", "--root", str(root)]) == 0
    assert capsys.readouterr().out.split() == ["stable", "table1"]


def test_collect_and_status_cover_every_pinned_profile_with_a_ledger_each(tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    for profile in ("smoke", "quick"):
        (root / profile).mkdir(parents=True)
        (root / profile / campaign.PIN).write_text(json.dumps({"commit": "a" * 40,
                                                                "worktree": "x"}))
    s = resolve_runs("smoke")[0]
    _write_run(s.run_dir(root), 1000, 36.0, done=True)
    args = ["--root", str(root), "--results", str(results)]
    assert campaign.main(["collect", *args]) == 0
    assert (s.run_dir(results) / DONE).is_file()
    for profile in ("smoke", "quick"):
        assert f"profile `{profile}`" in (results / profile / "CAMPAIGN.md").read_text()
    assert "1 done" in (results / "smoke" / "CAMPAIGN.md").read_text()
    assert "0 done" in (results / "quick" / "CAMPAIGN.md").read_text()
    assert not (results / "CAMPAIGN.md").exists() and not (results / "table1").exists()
    capsys.readouterr()
    assert campaign.main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "profile quick: no sweep, pinned at aaaaaaa" in out and "profile smoke:" in out
    assert campaign.main(["status", "--brief", *args]) == 0
    brief = capsys.readouterr().out.splitlines()
    assert len(brief) == 4 and "# Campaign ledger" not in "".join(brief)  # 2 lines a profile
    smoke = brief[brief.index(next(x for x in brief if "profile smoke:" in x)) + 1]
    assert smoke.startswith("  12 runs: 1 done, 0 stopped (non-finite), 0 in flight, "
                            "0 paused, 0 failed, 11 to go; "
                            "CPU-h spent 0.0, left at most")
    assert smoke.endswith("h on 2 worker(s)") and "wall-clock at most" in smoke
    assert "**Wall-clock hours left (estimate)**" in (results / "smoke" / "CAMPAIGN.md"
                                                      ).read_text()


def test_the_wall_clock_left_counts_the_tail_and_follows_the_sweeps_order():
    """In-flight runs hold lanes first; the rest start in the sweep's order as lanes free
    up; ended runs cost nothing. One long run started last is a tail that CPU-h / workers
    does not see."""
    from reproduce.ledger import wall_hours

    def runs(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["status", "order", "hours_left_measured"])

    cheap_first = runs([("in flight", 9, 3.0), ("to go", 1, 1.0), ("paused", 2, 1.0),
                        ("to go", 3, 1.0), ("to go", 4, 5.0), ("done", 0, 0.0)])
    assert wall_hours(cheap_first, 2) == 8.0  # lanes 3 | 1+1+1, then 5 after the 3: 3+5
    dear_first = runs([("in flight", 9, 3.0), ("to go", 1, 5.0), ("to go", 2, 1.0),
                       ("to go", 3, 1.0), ("to go", 4, 1.0)])
    assert wall_hours(dear_first, 2) == 6.0  # 3+1+1+1 | 5
    assert wall_hours(cheap_first, 1) == 11.0  # one lane: the CPU-hours
    assert wall_hours(runs([("done", 0, 0.0)]), 2) == 0.0
    with pytest.raises(ValueError, match="workers must be >= 1"):
        wall_hours(cheap_first, 0)


def test_ledger_cli_writes_the_profiles_own_ledger(root, tmp_path):
    r, _ = root
    results = tmp_path / "results"
    results.mkdir()
    assert ledger_main(["--profile", "smoke", "--results", str(results),
                        "--campaign", str(r)]) == 0
    text = (results / "smoke" / "CAMPAIGN.md").read_text()
    assert "1 done, 1 stopped (non-finite), 1 in flight" in text
    assert "Wall-clock" not in text  # no workers given: no wall-clock estimate
    assert not (results / "CAMPAIGN.md").exists()
    assert ledger_main(["--profile", "smoke", "--results", str(results), "--campaign", str(r),
                        "--workers", "2"]) == 0
    assert "on 2 worker(s) of one core each" in (results / "smoke" / "CAMPAIGN.md").read_text()
    # A profile set behind the others (campaign set --nice 19): its estimate says so.
    from reproduce.ledger import render

    runs = ledger(resolve_runs("smoke", results=results), [r, results])
    assert "start at nice" not in render("smoke", runs, [r], "cmd", workers=1)
    assert "Its sweeps start at nice 19, behind every sweep of lower niceness" in render(
        "smoke", runs, [r], "cmd", workers=1, nice=19)
    assert ledger_main(["--profile", "smoke", "--results", str(results), "--workers", "0"]) == 2


def test_an_unknown_pinned_profile_is_one_error_and_does_not_stop_the_others(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    (root / "nope").mkdir(parents=True)
    (root / "nope" / campaign.PIN).write_text(json.dumps({"commit": "a" * 40, "worktree": "x"}))
    assert _start(root, results, "--profile", "stable") == 0
    assert _start(root, results) == 2
    assert [p for p, _ in launches] == ["stable", "stable"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("campaign: nope: unknown profile 'nope'")


def test_pin_queues_a_profile_without_starting_it_and_repins_only_when_stopped(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    first = _git(repo, "rev-parse", "HEAD")
    assert campaign.main(["pin", "--profile", "stable", "--root", str(root)]) == 0
    assert launches == [] and campaign.read_pin(root, "stable")["commit"] == first
    assert "campaign: stable: pinned at " + first[:7] in capsys.readouterr().out
    second = _commit(repo, "two")
    assert campaign.main(["pin", "--profile", "stable", "--root", str(root)]) == 0
    assert campaign.read_pin(root, "stable")["commit"] == first  # kept without --repin
    (root / "stable" / campaign.PID).write_text(f"{os.getpid()}\n")  # its sweep is running
    assert campaign.main(["pin", "--profile", "stable", "--repin", "--root", str(root)]) == 2
    assert "stop it before repinning" in capsys.readouterr().err
    (root / "stable" / campaign.PID).unlink()
    assert campaign.main(["pin", "--profile", "stable", "--repin", "--root", str(root)]) == 0
    assert campaign.read_pin(root, "stable")["commit"] == second
    assert _start(root, results) == 0  # the next start takes it up
    assert [p for p, _ in launches] == ["stable"]
    assert campaign.main(["pin", "--root", str(root)]) == 2
    assert "pin needs --profile" in capsys.readouterr().err


def test_a_selection_profile_takes_the_checkouts_file_into_the_root(
        repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    # no selection yet: a one-line error, nothing launched
    assert _start(root, results, "--profile", "bestbatch-confirm") == 2
    assert "selection.json" in capsys.readouterr().err and launches == []
    sel = results / "bestbatch" / "selection.json"
    sel.parent.mkdir(parents=True)
    sel.write_text(json.dumps({"algos": {"Reacher": ["trpo", "qprop-c"]}}))
    assert _start(root, results, "--profile", "bestbatch-confirm") == 0
    assert (root / "bestbatch" / "selection.json").read_bytes() == sel.read_bytes()
    assert [p for p, _ in launches] == ["bestbatch-confirm"]
    # a domain is added (chosen once its grid completed): the root takes the grown file
    grown = {"algos": {"Reacher": ["trpo", "qprop-c"], "Swimmer": ["trpo-b5000", "qprop-c"]}}
    sel.write_text(json.dumps(grown))
    assert _start(root, results, "--profile", "bestbatch-confirm") == 0
    assert "selection grows to Reacher, Swimmer (was Reacher)" in capsys.readouterr().out
    assert json.loads((root / "bestbatch" / "selection.json").read_text()) == grown
    # a choice the campaign's runs were made with changes: refused, not silently mixed
    sel.write_text(json.dumps({"algos": {"Reacher": ["trpo-b1000", "qprop-c"]}}))
    assert _start(root, results, "--profile", "bestbatch-confirm") == 2
    assert "chooses otherwise than" in capsys.readouterr().err
    assert json.loads((root / "bestbatch" / "selection.json").read_text()) == grown


# ---- drain: a repin that neither mixes commits nor drops a run ----------------------------

@pytest.fixture
def drains(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path, list[str]]]:
    """Record the drains `start` launches: (profile, worktree, unfinished run keys)."""
    calls: list[tuple[str, Path, list[str]]] = []
    targets: list[Path | None] = []

    def fake(profile: str, wt: Path, root: Path, results: Path, specs: list, workers: int,
             nice: int, target_wt: Path | None = None) -> tuple[int, Path]:
        calls.append((profile, wt, [s.key for s in specs]))
        targets.append(target_wt)
        return 2**22 + 4322, root / "logs" / "drain_fake.out"  # no such process

    monkeypatch.setattr(campaign, "launch_drain", fake)
    monkeypatch.setattr(campaign, "drain_targets", targets, raising=False)
    return calls


def test_drain_resumes_the_unfinished_runs_at_the_old_pin_then_repins(
        repo, launches, drains, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    assert _start(root, results, "--profile", "smoke") == 0
    old = campaign.read_pin(root, "smoke")
    specs = resolve_runs("smoke")
    _write_run(specs[0].run_dir(root), 1000, 36.0, done=True)
    _write_run(specs[1].run_dir(root), 500, 18.0)  # killed mid-run: paused at the old pin
    _write_run(specs[2].run_dir(root), 200, 8.0)
    new = _commit(repo, "two")
    args = ["--root", str(root), "--results", str(results), "--profile", "smoke"]
    (root / "smoke" / campaign.PID).write_text(f"{os.getpid()}\n")  # its sweep still runs
    assert campaign.main(["drain", *args]) == 2
    assert "stop it first" in capsys.readouterr().err
    (root / "smoke" / campaign.PID).unlink()
    assert campaign.main(["drain", *args]) == 0
    drain = json.loads((root / "smoke" / campaign.DRAIN).read_text())
    assert drain["target"] == new and drain["unfinished"] == [specs[1].key, specs[2].key]
    assert campaign.read_pin(root, "smoke") == old  # not yet
    # start resumes just the unfinished runs, at the old pin, and no sweep of the profile
    assert _start(root, results, "--profile", "smoke") == 0
    assert drains == [("smoke", Path(old["worktree"]), [specs[1].key, specs[2].key])]
    target_wt = campaign.drain_targets[0]  # the target's worktree, for the new runs
    assert target_wt == root / f"wt-{new[:7]}" and target_wt.is_dir()
    assert subprocess.run(["git", "-C", str(target_wt), "rev-parse", "HEAD"], text=True,
                          capture_output=True).stdout.strip() == new
    assert len(launches) == 1 and campaign.read_pin(root, "smoke") == old
    assert "draining to " + new[:7] in capsys.readouterr().out
    assert campaign.main(["status", *args]) == 0
    assert f"pinned at {old['commit'][:7]}, draining to {new[:7]}" in capsys.readouterr().out
    # a run the drain's lanes started at the target, then interrupted: not drained again
    _write_run(specs[3].run_dir(root), 300, 9.0)
    (specs[3].run_dir(root) / "config.json").write_text(json.dumps({"git_commit": new}))
    (specs[1].run_dir(root) / DONE).write_text("{}")
    assert _start(root, results, "--profile", "smoke") == 0
    assert drains[-1] == ("smoke", Path(old["worktree"]), [specs[2].key])
    # once the drained runs are finished, start repins to the target (not to a newer HEAD),
    # the target's unfinished run no obstacle, and goes on
    (specs[2].run_dir(root) / DONE).write_text("{}")
    _commit(repo, "three")
    assert _start(root, results, "--profile", "smoke") == 0
    pin = campaign.read_pin(root, "smoke")
    assert pin["commit"] == new and not (root / "smoke" / campaign.DRAIN).exists()
    assert launches[-1] == ("smoke", Path(pin["worktree"])) and len(drains) == 2
    assert "drained; pinned at " + new[:7] in capsys.readouterr().out


def test_drain_without_unfinished_runs_repins_at_once(repo, launches, drains, tmp_path):
    root, results = tmp_path / "campaign", tmp_path / "results"
    assert _start(root, results, "--profile", "smoke") == 0
    new = _commit(repo, "two")
    assert campaign.main(["drain", "--root", str(root), "--profile", "smoke"]) == 0
    assert campaign.read_pin(root, "smoke")["commit"] == new
    assert not (root / "smoke" / campaign.DRAIN).exists()


def _fake_tree(where: Path, module: str, calls: Path, fail_on: str = "") -> Path:
    """A directory whose ``python -m reproduce.<module>`` appends its cwd and arguments to
    ``calls`` (and exits 1 when they contain ``fail_on``)."""
    (where / "reproduce").mkdir(parents=True)
    (where / "reproduce" / "__init__.py").write_text("")
    (where / "reproduce" / f"{module}.py").write_text(
        "import os, sys\n"
        "# p.add_argument(\"--first-seed\"); p.add_argument(\"--exclude\")\n"
        f"open({str(calls)!r}, 'a').write(os.getcwd() + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n"
        f"sys.exit(1 if {fail_on!r} and {fail_on!r} in ' '.join(sys.argv) else 0)\n")
    return where


@pytest.mark.parametrize("fail", [False, True])
def test_the_drain_script_runs_lanes_old_runs_then_the_targets_then_starts(
        tmp_path, monkeypatch: pytest.MonkeyPatch, fail):
    """Run the script itself, on fake sweeps: each of the 2 lanes resumes its drained runs at
    the old pin (one sweep each), then sweeps the profile at the target with 1 worker and
    every drained run excluded; then `campaign start`. A drained run that fails stops its
    lane before the target's sweep, and the start."""
    monkeypatch.setattr(campaign_pins.os, "nice", lambda increment: 0)  # tests may run niced
    calls = tmp_path / "calls.txt"
    specs = resolve_runs("smoke")[1:4]
    wt = _fake_tree(tmp_path / "wt-old", "sweep", calls,
                    fail_on=f"--algos {specs[0].algo} --first-seed" if fail else "")
    target = _fake_tree(tmp_path / "wt-new", "sweep", calls)
    repo = _fake_tree(tmp_path / "repo", "campaign", calls)
    monkeypatch.setattr(campaign_drain, "REPO_ROOT", repo)
    root = tmp_path / "root"
    (root / "smoke").mkdir(parents=True)
    (root / "smoke" / campaign.PID).write_text("1\n")
    text = campaign_drain.drain_script("smoke", wt, root, tmp_path / "res", specs, workers=2,
                                       nice=0, target_wt=target)
    done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=120)
    lines = calls.read_text().splitlines()
    old = [x for x in lines if x.startswith(f"{wt} ")]
    new = [x for x in lines if x.startswith(f"{target} ")]
    starts = [x for x in lines if x.startswith(f"{repo} ")]
    swept = [s for s in specs if any(
        f"--domains {s.domain} --algos {s.algo} --first-seed {s.seed} --seeds 1" in x
        for x in old)]
    assert all("--workers 1" in x for x in old) and len(swept) == len(old)
    excluded = "--exclude " + ",".join(s.key for s in specs)
    assert all(excluded in x and "--workers 1" in x for x in new)
    if fail:  # lane 0 (runs 0 and 2) failed on run 0: its run 2 and target sweep never ran
        assert swept == specs[:2] and len(new) == 1 and starts == []
        assert done.returncode == 1
        assert (root / "smoke" / campaign.PID).is_file()
    else:
        assert swept == specs
        assert done.returncode == 0, done.stderr
        assert len(new) == 2
        assert len(starts) == 1 and "start --profile smoke" in starts[0]
        # the pid file names the script until its start (the same pid) replaces it: a stop
        # in the handover finds it
        assert (root / "smoke" / campaign.PID).read_text() == "1\n"


def test_the_drain_script_without_a_target_that_can_exclude_starts_no_new_run(
        tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(campaign_pins.os, "nice", lambda increment: 0)
    specs = resolve_runs("smoke")
    wt = tmp_path / "wt"
    (wt / "reproduce").mkdir(parents=True)
    (wt / "reproduce" / "sweep.py").write_text("no such flag")  # an older pin's sweep
    target = tmp_path / "target"
    (target / "reproduce").mkdir(parents=True)
    (target / "reproduce" / "sweep.py").write_text('p.add_argument("--first-seed")')
    old = campaign_drain.drain_script("smoke", wt, tmp_path / "root", tmp_path / "res",
                                      specs[1:2], workers=1, nice=10, target_wt=target)
    assert "--algos qprop-c --seeds 2" in old and old.count("nice -n 10") == 1
    assert "--exclude" not in old and "exec " in old.splitlines()[-1]


def test_an_old_pins_sweep_may_not_start_a_lower_seed_in_a_drain(tmp_path):
    specs = resolve_runs("smoke")  # [1] is Hopper/qprop-c seed 1
    wt, root = tmp_path / "wt", tmp_path / "root"
    (wt / "reproduce").mkdir(parents=True)
    (wt / "reproduce" / "sweep.py").write_text("seeds 0..N-1 only")
    _write_run(specs[1].run_dir(root), 500, 18.0)  # seed 0 of its cell is not done
    with pytest.raises(campaign.CampaignError, match="seeds \\[0\\] of its cell would start"):
        campaign_drain.launch_drain("smoke", wt, root, tmp_path, specs[1:2], 1, 0)
    assert not (root / "logs").exists()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record the sweeps `start` launches, with their priority: (profile, workers, nice)."""
    calls: list[tuple[str, int, int]] = []

    def fake_launch(profile: str, wt: Path, root: Path, workers: int,
                    nice: int) -> tuple[int, Path]:
        calls.append((profile, workers, nice))
        return 2**22 + 4323, root / "logs" / "fake.out"  # no such process

    monkeypatch.setattr(campaign, "launch", fake_launch)
    return calls


def test_a_profiles_recorded_priority_applies_at_every_start(repo, tmp_path, capsys, started):
    root, results = tmp_path / "campaign", tmp_path / "results"
    main = campaign.main
    assert main(["set", "--profile", "table1", "--root", str(root), "--nice", "15"]) == 0
    assert main(["set", "--profile", "stable", "--root", str(root), "--workers", "3"]) == 0
    assert main(["set", "--profile", "stable", "--root", str(root), "--nice", "2"]) == 0
    assert campaign_pins.read_settings(root, "stable") == {"workers": 3, "nice": 2}  # merged
    assert "its sweeps start with nice 2, workers 3" in capsys.readouterr().out
    assert _start(root, results, "--profile", "table1") == 0
    assert _start(root, results, "--profile", "stable") == 0
    assert started == [("table1", 2, 15), ("stable", 3, 2)]
    for p in ("table1", "stable"):
        (root / p / campaign.PID).unlink()
    # a command's --nice can only raise a profile's; its --workers overrides
    assert _start(root, results, "--nice", "10", "--workers", "1") == 0
    assert sorted(started[2:]) == [("stable", 1, 10), ("table1", 1, 15)]
    for p in ("table1", "stable"):
        (root / p / campaign.PID).unlink()
    assert main(["status", "--root", str(root), "--results", str(results),
                 "--profile", "stable"]) == 0
    assert "sweeps start with workers 3, nice 2" in capsys.readouterr().out
    assert main(["set", "--profile", "stable", "--root", str(root), "--nice", "20"]) == 2
    with pytest.raises(SystemExit):  # argparse's error, as for start
        main(["set", "--profile", "stable", "--root", str(root), "--workers", "0"])
    assert main(["set", "--profile", "nope", "--root", str(root), "--nice", "1"]) == 2
    assert main(["set", "--root", str(root), "--nice", "1"]) == 2
    assert campaign_pins.read_settings(root, "stable") == {"workers": 3, "nice": 2}  # unchanged


def test_a_sweeps_niceness_is_absolute_not_added_to_the_callers(monkeypatch: pytest.MonkeyPatch):
    """A drain (already at nice 15) that starts its profile at nice 15 must not give 19."""
    monkeypatch.setattr(campaign_pins.os, "nice", lambda increment: 15)  # the caller's
    assert campaign_pins.nice_prefix(15) == []
    assert campaign_pins.nice_prefix(19) == ["nice", "-n", "4"]
    assert campaign_pins.nice_prefix(10) == []  # cannot go back up: stays at 15
    monkeypatch.setattr(campaign_pins.os, "nice", lambda increment: 0)
    assert campaign_pins.nice_prefix(15) == ["nice", "-n", "15"]
    assert campaign_pins.nice_prefix(0) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no procfs")
def test_an_exited_sweep_not_yet_reaped_is_not_running(tmp_path: Path):
    """A zombie still answers kill(pid, 0): read as running, it made ``start`` skip its
    profile for the seconds before init reaped the sweep that a stop had just ended."""
    proc = subprocess.Popen(["true"])  # exits at once; not reaped until wait()
    (tmp_path / "table1").mkdir()
    (tmp_path / "table1" / campaign.PID).write_text(f"{proc.pid}\n")
    try:
        deadline = time.monotonic() + 60
        while proc_stat(proc.pid)[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.02)
        os.kill(proc.pid, 0)  # what the old check asked: still there
        assert campaign_pins.running_pid(tmp_path, "table1") is None
    finally:
        proc.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "table1" / campaign.PID).write_text(f"{live.pid}\n")
        assert campaign_pins.running_pid(tmp_path, "table1") == live.pid
    finally:
        live.kill()
        live.wait()


@pytest.mark.skipif(not campaign_pins.AUTOGROUP.exists(), reason="no autogroup scheduling")
def test_a_detached_sweep_gets_its_niceness_as_a_scheduling_group(tmp_path: Path):
    """Each detached sweep is a session, so an autogroup: its nice must be the group's, or
    it weighs nothing against the other sweeps (the bug: nice-15 sweeps got a full share)."""
    pid, _ = campaign_pins.detach(["sleep", "120"], tmp_path, tmp_path, "t", nice=7)
    try:
        group = Path(f"/proc/{pid}/autogroup")
        deadline = time.monotonic() + 60  # a loaded machine may take seconds to exec
        while time.monotonic() < deadline:
            # argv[0], not "in": the shell's own ``-c ... sleep 120`` names sleep before
            # its exec (the race that failed CI once: argv[0] was still b"sh")
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if group.read_text().split()[-1] == "7" and argv0 == b"sleep":
                break
            time.sleep(0.02)
        assert group.read_text().split()[-1] == "7"
        # Our own process may be in no autogroup at all (the root group: an empty file, as under
        # CI's runner); the sweep must still be in a group of its own.
        ours = Path("/proc/self/autogroup").read_text().split()
        assert group.read_text().split()[0] != (ours[0] if ours else "")
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"  # exec'd
        assert campaign_pins.autogroup_nice(pid) == 7
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    assert campaign_pins.autogroup_prefix(0) == []


def test_status_warns_when_a_sweeps_group_runs_at_another_niceness(monkeypatch, tmp_path: Path):
    campaign_pins.write_settings(tmp_path, "table1", nice=15)
    from reproduce import campaign_status

    monkeypatch.setattr(campaign_status, "autogroup_nice", lambda pid: 0)  # by older code
    assert "group nice 0, NOT its 15: `echo 15 > /proc/123/autogroup`" in \
        campaign_status.group_nice_note(123, "table1", tmp_path)
    monkeypatch.setattr(campaign_status, "autogroup_nice", lambda pid: 15)
    assert campaign_status.group_nice_note(123, "table1", tmp_path) == ", group nice 15"
    monkeypatch.setattr(campaign_status, "autogroup_nice", lambda pid: None)  # no autogroups
    assert campaign_status.group_nice_note(123, "table1", tmp_path) == ""


def test_a_complete_profile_starts_no_sweep(repo, launches, tmp_path, capsys):
    root, results = tmp_path / "campaign", tmp_path / "results"
    specs = resolve_runs("stable-walker", results=results)
    for i, s in enumerate(specs):  # finished: most committed, the last one in the root
        d = s.run_dir(root if i == len(specs) - 1 else results)
        d.mkdir(parents=True)
        (d / DONE).write_text("{}")
    assert _start(root, results, "--profile", "stable-walker") == 0
    assert launches == []
    assert "stable-walker: complete, all 12 runs done; nothing to start" in \
        capsys.readouterr().out
    (specs[0].run_dir(results) / DONE).unlink()  # one run left: the sweep starts
    assert _start(root, results, "--profile", "stable-walker") == 0
    assert [p for p, _ in launches] == ["stable-walker"]


def test_a_fresh_root_takes_up_every_committed_campaign_with_runs_left(
        repo, tmp_path, capsys, started):
    """A new machine: the root is gone, the committed results remain. One `start` restarts
    the profiles whose collected campaign had runs left, at their recorded priority."""
    old, fresh, results = tmp_path / "old", tmp_path / "fresh", tmp_path / "results"
    main = campaign.main
    for s in resolve_runs("stable-walker", results=results):  # a finished campaign
        s.run_dir(results).mkdir(parents=True)
        (s.run_dir(results) / DONE).write_text("{}")
    assert main(["set", "--profile", "smoke", "--root", str(old), "--nice", "19"]) == 0
    assert main(["pin", "--profile", "smoke", "--root", str(old)]) == 0
    for p in ("smoke", "stable-walker"):
        assert campaign.collect(p, old, results) == 0
    state = json.loads((results / "smoke" / campaign_pins.COMMITTED).read_text())
    assert state == {"profile": "smoke", "nice": 19, "workers": 2, "runs_left": 12,
                     "pinned_commit": _git(repo, "rev-parse", "HEAD")}
    assert campaign_pins.open_campaigns(results) == ["smoke"]  # stable-walker: 0 left
    assert main(["profiles", "--root", str(old), "--results", str(results)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "smoke"  # pinned there
    _commit(repo, "two")  # main moved on meanwhile
    assert _start(fresh, results) == 0
    assert started == [("smoke", 2, 19)]  # not table1, not the finished one
    assert campaign.read_pin(fresh, "smoke")["commit"] == state["pinned_commit"]  # not HEAD
    assert campaign_pins.read_settings(fresh, "smoke") == {"nice": 19, "workers": 2}
    assert campaign.pinned(fresh) == ["smoke"]
    # the root's own settings win over the committed ones from then on
    assert main(["set", "--profile", "smoke", "--root", str(fresh), "--nice", "5"]) == 0
    assert campaign_pins.seed_settings(fresh, results, "smoke") == {"nice": 5, "workers": 2}
    # with no committed campaign left open, a fresh root starts table1, as before
    (results / "smoke" / campaign_pins.COMMITTED).unlink()
    assert campaign.selected(tmp_path / "another", None, results) == ["table1"]


def test_start_links_identical_finished_runs_of_other_profiles_and_collect_keeps_the_link(
        repo, launches, tmp_path, capsys):
    """A run another profile of the root has finished (same RunSpec.identity()) is linked,
    not trained again; collect turns the root's link into the same link in the results, with
    its target collected once."""
    root, results = tmp_path / "campaign", tmp_path / "results"
    grid = {(s.domain, s.algo, s.seed): s for s in resolve_runs("bestbatch")}
    done, unfinished = grid["Reacher", "trpo", 0], grid["Reacher", "qprop-c", 0]
    for s, fin in ((done, True), (unfinished, False)):
        _write_run(s.run_dir(root), s.max_steps, 10.0, done=fin)
        (s.run_dir(root) / "spec.json").write_text(json.dumps(s.to_dict()))
    assert _start(root, results, "--profile", "table1") == 0
    assert "; 1 linked to identical finished runs of other profiles" in capsys.readouterr().out
    link = replace(done, profile="table1").run_dir(root)
    assert link.is_symlink() and (link / DONE).is_file()
    assert not replace(unfinished, profile="table1").run_dir(root).exists()
    campaign.collect("table1", root, results)
    dst = replace(done, profile="table1").run_dir(results)
    assert dst.is_symlink() and os.readlink(dst) == os.readlink(link)
    target = done.run_dir(results)
    assert (target / DONE).is_file() and not target.is_symlink()
    assert not (target / "checkpoint").exists()


def test_collect_copies_a_run_stopped_on_a_non_finite_value(root, tmp_path, capsys):
    """Such a run never gets DONE and is never rerun: it is a result, copied (without its
    checkpoint) where the table and the comparisons count it; a plain failure is parked."""
    r, specs = root
    results = tmp_path / "results"
    dead = specs[4].run_dir(r)
    _write_run(dead, 700, 20.0, log=f"[reproduce] {specs[4].key} on vm pid 9 nice 0: x\n"
               "Traceback (most recent call last):\n  File \"run.py\"\n"
               "qprop_tf.errors.NonFiniteError: non-finite value in iteration 3 update\n")
    campaign.collect("smoke", r, results)
    # this one and the fixture's own (specs[11])
    assert "2 stopped on a non-finite value (a result, counted)" in capsys.readouterr().out
    copied = specs[4].run_dir(results)
    assert (copied / "progress.csv").is_file() and not (copied / "checkpoint").exists()
    assert not specs[2].run_dir(results).exists()  # failed otherwise: parked, not counted
    campaign.collect("smoke", r, results)  # once copied, not again
    assert "stopped on a non-finite value" not in capsys.readouterr().out


def test_prune_removes_only_the_worktrees_no_pin_and_no_process_holds(repo, tmp_path, capsys):
    """Repins leave old `wt-*` worktrees behind. `prune` removes those; a pinned one, one a
    live process works in (a sweep draining from its old pin) and a dirty one stay."""
    root = tmp_path / "campaign"
    root.mkdir()
    for name in ("wt-aaa", "wt-bbb", "wt-ccc", "wt-ddd"):
        _git(repo, "worktree", "add", "-q", "--detach", str(root / name))
    (root / "smoke").mkdir()
    (root / "smoke" / campaign.PIN).write_text(json.dumps({"commit": "x",
                                                           "worktree": str(root / "wt-aaa")}))
    (root / "wt-ddd" / "stray.txt").write_text("not committed")  # git refuses to remove it
    busy = subprocess.Popen(["sleep", "60"], cwd=root / "wt-ccc")
    try:
        (root / "smoke" / campaign.DRAIN).write_text(json.dumps({"target": "bbb"}))
        assert [p.name for p in campaign_pins.prunable(root)] == ["wt-ddd"]  # bbb: drain's
        (root / "smoke" / campaign.DRAIN).unlink()
        assert [p.name for p in campaign_pins.prunable(root)] == ["wt-bbb", "wt-ddd"]
        assert campaign.main(["prune", "--root", str(root), "--dry-run"]) == 0
        assert "would remove 2 worktree(s)" in capsys.readouterr().out
        assert (root / "wt-bbb").is_dir()
        (root / "wt-ddd" / "stray.txt").unlink()
        assert campaign.main(["prune", "--root", str(root)]) == 0
        assert "removed 2 worktree(s) no profile pins and no process uses: wt-bbb, wt-ddd" \
            in capsys.readouterr().out
        assert sorted(p.name for p in root.glob("wt-*")) == ["wt-aaa", "wt-ccc"]
        _git(repo, "worktree", "add", "-q", "--detach", str(root / "wt-eee"))
        (root / "wt-eee" / "stray.txt").write_text("not committed")
        assert campaign.main(["prune", "--root", str(root)]) == 2  # refused, said, kept
        assert "wt-eee" in capsys.readouterr().err and (root / "wt-eee" / "stray.txt").exists()
    finally:
        busy.kill()
        busy.wait()


def test_start_on_a_machine_without_the_checkpoints_warns_of_the_loss(
        repo, launches, tmp_path, capsys):
    """A fresh machine: the committed progress of an unfinished run has no checkpoint here."""
    root, results = tmp_path / "campaign", tmp_path / "results"
    spec = resolve_runs("smoke", results=results)[1]
    parked = results / "smoke" / "inflight" / spec.domain / spec.algo / f"seed{spec.seed}"
    parked.mkdir(parents=True)
    pd.DataFrame({"env_steps": [1000, 2000], "time": [4000.0, 6000.0],
                  "cpu_time": [3600.0, 5400.0]}).to_csv(parked / "progress.csv", index=False)
    assert _start(root, results, "--profile", "smoke") == 0
    out = capsys.readouterr().out
    assert (f"WARNING: {spec.domain} {spec.algo} seed {spec.seed} {RESTARTED}: 1.50 CPU-h"
            in out)
    assert launches  # it warns, and starts all the same


def test_another_specs_run_in_a_runs_place_is_neither_collected_nor_counted(
        root, tmp_path, capsys):
    """A finished run whose spec.json is another spec's (a Humanoid run from before
    ``action_scale``, in the place of the authors' setting's run) is not this profile's run:
    collect names it and leaves it, and the ledger counts the place as to go."""
    r, specs = root
    results = tmp_path / "results"
    spec = specs[5]
    place = spec.run_dir(r)
    _write_run(place, 1000, 36.0)
    campaign.collect("smoke", r, results)  # unfinished: its progress parked
    parked = results / "smoke" / "inflight" / spec.domain / spec.algo / f"seed{spec.seed}"
    assert (parked / "progress.csv").is_file()
    (place / DONE).write_text("{}")
    other = replace(spec, overrides={**spec.overrides, "batch_size": 123})
    (place / "spec.json").write_text(json.dumps(other.to_dict()))
    assert ledger(specs, [r]).set_index(["domain", "algo", "seed"]).loc[
        (spec.domain, spec.algo, spec.seed), "status"] == "to go"
    campaign.collect("smoke", r, results)
    out = capsys.readouterr().out
    assert "another spec's run in the place of this profile's" in out and spec.key in out
    assert not spec.run_dir(results).exists() and not parked.exists()  # nor drawn as one
    (place / "spec.json").write_text(json.dumps(spec.to_dict()))  # its own spec: collected
    campaign.collect("smoke", r, results)
    assert (spec.run_dir(results) / DONE).is_file()


def test_rehome_moves_another_specs_finished_run_to_the_profile_whose_spec_it_is(
        tmp_path, capsys):
    """A Humanoid run from before action_scale (its spec.json without it: the env's bounds)
    in table1's place moves, whole, to humanoid-env's, in the root and the results alike;
    an unfinished one, or one whose home is taken, stays and is named."""
    root, results = tmp_path / "campaign", tmp_path / "results"
    old = resolve_runs("humanoid-env", ["Humanoid"], ["trpo", "ddpg"], 2)
    legacy = [replace(s, profile="table1", overrides={
        k: v for k, v in s.overrides.items() if k != "action_scale"}) for s in old]
    for tree, spec, done in ((root, legacy[0], True), (results, legacy[0], True),
                             (root, legacy[1], False), (root, legacy[2], True)):
        _write_run(spec.run_dir(tree), 1000, 36.0, done=done)
        (spec.run_dir(tree) / "spec.json").write_text(json.dumps(spec.to_dict()))
    taken = old[2].run_dir(root)  # humanoid-env's place of the third already holds a run
    _write_run(taken, 10, 1.0, done=True)
    assert campaign.main(["rehome", "--profile", "table1", "--root", str(root),
                          "--results", str(results), "--dry-run"]) == 0
    assert "would move 2 run(s)" in capsys.readouterr().out
    assert legacy[0].run_dir(root).is_dir()  # a dry run moves nothing
    assert campaign.main(["rehome", "--profile", "table1", "--root", str(root),
                          "--results", str(results)]) == 0
    out = capsys.readouterr().out
    for tree in (root, results):
        assert not legacy[0].run_dir(tree).exists()
        assert (old[0].run_dir(tree) / DONE).is_file()
    assert f"left: {legacy[1].key} in {root}: unfinished" in out
    assert legacy[1].run_dir(root).is_dir() and not old[1].run_dir(root).exists()
    assert f"left: {legacy[2].key} in {root}: {taken} already exists" in out
    assert (legacy[2].run_dir(root) / DONE).is_file()
    assert campaign.main(["rehome", "--root", str(root)]) == 2  # needs --profile


def test_status_lists_the_runs_under_way_with_their_progress(root):
    from reproduce.campaign_status import underway

    r, specs = root
    lines = underway(ledger(specs, [r]))
    assert len(lines) == 2  # in flight and paused; not done, failed, stopped or to go
    flight, paused = (next(x for x in lines if f" seed {specs[i].seed}: {st}," in x
                           and f"{specs[i].domain} {specs[i].algo} " in x)
                      for i, st in ((1, "in flight"), (3, "paused")))
    budget = specs[1].max_steps
    assert f"0.00M of {budget / 1e6:.2f}M env steps ({500 / budget:.0%})" in flight
    assert "CPU-h spent, at most" in paused and paused.endswith(" left")
    # with what collect parked: which of them a machine change would start from zero
    s = specs[3]
    for line in underway(ledger(specs, [r]), {(s.domain, s.algo, s.seed)}):
        ours = f"{s.domain} {s.algo} seed {s.seed}:" in line
        assert line.endswith("; a new machine resumes it from its parked checkpoint" if ours
                             else "; a new machine starts it from zero")


def test_a_campaign_commit_this_clone_does_not_know_pins_head(repo, tmp_path, capsys, started):
    results, fresh = tmp_path / "results", tmp_path / "fresh"
    campaign_pins.write_committed(results, "smoke", {"nice": 0, "workers": 2}, 12, "f" * 40)
    assert _start(fresh, results) == 0
    assert campaign.read_pin(fresh, "smoke")["commit"] == _git(repo, "rev-parse", "HEAD")
    assert "is not in this repository; pinning HEAD" in capsys.readouterr().out
    assert started == [("smoke", 2, 0)]
