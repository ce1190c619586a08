"""reproduce.reuse: identical finished runs of other profiles are linked, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from reproduce import reuse as ru
from reproduce.results import load_runs
from reproduce.spec import RunSpec, resolve_runs


def _finish(results: Path, spec: RunSpec, profile: str, **override: object) -> Path:
    """A finished run of ``spec`` stored in ``profile``'s tree (``override``: spec fields)."""
    d = RunSpec.from_dict({**spec.to_dict(), "profile": profile}).run_dir(results)
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({**spec.to_dict(), "profile": profile,
                                             **override}))
    (d / "progress.csv").write_text("iteration,env_steps,average_return\n0,5000,10.0\n")
    (d / "config.json").write_text(json.dumps({"config": {"algo": spec.base_algo}}))
    (d / "DONE").write_text(json.dumps({"stopped": "budget"}))
    return d


def test_links_only_identical_finished_runs(tmp_path: Path, capsys):
    specs = {(s.algo, s.seed): s for s in resolve_runs("bestbatch", ["Hopper"])}
    same = _finish(tmp_path, specs[("trpo", 0)], "table1")
    _finish(tmp_path, specs[("trpo", 1)], "table1", budget_episodes=1.0)  # another budget
    unfinished = _finish(tmp_path, specs[("qprop-c", 0)], "table1")
    (unfinished / "DONE").unlink()
    _finish(tmp_path, specs[("trpo-b5000", 0)], "ablation")
    own = _finish(tmp_path, specs[("qprop-c", 1)], "bestbatch")  # already there: untouched
    _finish(tmp_path, specs[("qprop-c", 1)], "table1")

    assert ru.main(["--profile", "bestbatch", "--from", "table1,ablation", "--results",
                    str(tmp_path), "--dry-run"]) == 0
    assert "2 run(s) would link" in capsys.readouterr().out
    assert not (tmp_path / "bestbatch/runs/Hopper/trpo").exists()

    made = ru.reuse(tmp_path, "bestbatch", ["table1", "ablation"])
    links = sorted(str(link.relative_to(tmp_path)) for link, _ in made)
    assert links == ["bestbatch/runs/Hopper/trpo-b5000/seed0", "bestbatch/runs/Hopper/trpo/seed0"]
    link = tmp_path / "bestbatch/runs/Hopper/trpo/seed0"
    assert link.is_symlink() and link.resolve() == same.resolve()
    assert not Path(link.readlink()).is_absolute()  # relative: survives a clone elsewhere
    assert not own.is_symlink()
    # the results reader sees the linked runs as the profile's own
    seen = {(r.algo, r.seed) for r in load_runs(tmp_path, "bestbatch").runs}
    assert seen == {("trpo", 0), ("trpo-b5000", 0), ("qprop-c", 1)}
    assert ru.reuse(tmp_path, "bestbatch", ["table1", "ablation"]) == []  # idempotent


def test_bad_profiles_are_clean_errors(tmp_path: Path, capsys):
    assert ru.main(["--profile", "bestbatch", "--from", "nope", "--results",
                    str(tmp_path)]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert ru.main(["--profile", "bestbatch", "--from", "bestbatch", "--results",
                    str(tmp_path)]) == 2
    assert "must not include the profile itself" in capsys.readouterr().err
