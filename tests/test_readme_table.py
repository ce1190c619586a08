"""reproduce.readme_table: the README's Table 1 is the file `make table` wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reproduce import readme_table as rt

ROOT = Path(__file__).resolve().parents[1]


def test_splice_replaces_only_the_marked_table_and_refuses_bad_markers():
    readme = f"intro\n{rt.BEGIN}\n| old |\n{rt.END}\n\nafter\n"
    assert rt.splice(readme, "| new |\n|---|\n") == \
        f"intro\n{rt.BEGIN}\n| new |\n|---|\n{rt.END}\n\nafter\n"
    for bad in ("no markers", f"{rt.BEGIN}\n{rt.BEGIN}\n{rt.END}", f"{rt.BEGIN}{rt.END}"):
        with pytest.raises(rt.ReadmeTableError):
            rt.splice(bad, "| t |")


LEDGER = ("# Campaign ledger: profile `table1`\n\nWritten today.\n\n- **Runs**: 63: 40 done.\n"
          "- **CPU-hours spent**: 24.0.\n- **Statuses**: done = `DONE`.\n\n"
          "| Domain | Algorithm |\n|---|---|\n| Ant | trpo |\n")


def test_the_ledger_block_is_its_totals_without_title_legend_or_table():
    head = rt.ledger_head(LEDGER)
    assert head.strip() == ("Written today.\n\n- **Runs**: 63: 40 done.\n"
                            "- **CPU-hours spent**: 24.0.")
    for bad in ("no title\n- **Runs**: 1\n", "# Campaign ledger\n\n| Domain |\n- **Runs**: 1\n"):
        with pytest.raises(rt.ReadmeTableError):
            rt.ledger_head(bad)


def test_the_command_writes_then_checks(tmp_path: Path, capsys):
    readme = tmp_path / "README.md"
    (c_begin, c_end), (q_begin, q_end) = rt.BLOCKS[1].markers, rt.BLOCKS[2].markers
    v_begin, v_end = rt.BLOCKS[3].markers
    readme.write_text(f"# x\n{rt.BEGIN}\n| stale |\n{rt.END}\n\n{c_begin}\n- old totals\n"
                      f"{c_end}\n{q_begin}\n| old ratio |\n{q_end}\n{v_begin}\n| 1 |\n"
                      f"{v_end}\nend\n")
    src, ledger = tmp_path / "results" / rt.SOURCE, tmp_path / "results" / rt.LEDGER
    comparison = tmp_path / "results" / rt.COMPARISON
    full = tmp_path / "results" / rt.FULL_TABLE
    full.parent.mkdir(parents=True)
    full.write_text("# Table 1\n\n| Domain |\n|---|\n| Ant |\n\n## Episodes verdicts, counted"
                    "\n\n| Algorithm | better |\n|---|---|\n| TRPO | 2 |\n\n## Why\n\n| no |\n")
    args = ["--readme", str(readme), "--results", str(tmp_path / "results")]
    assert rt.main([*args, "--check"]) == 2  # no table written yet
    assert "run `make table` first" in capsys.readouterr().err
    src.write_text("| fresh |\n")
    assert rt.main([*args, "--check"]) == 2  # no ledger yet
    assert "run `make campaign-collect` first" in capsys.readouterr().err
    ledger.write_text(LEDGER)
    assert rt.main([*args, "--check"]) == 2  # no comparison yet
    assert "run `make table` first" in capsys.readouterr().err
    comparison.write_text("# A vs B\n\n- rules\n\n| Domain | Ratio |\n|---|---|\n"
                          "| Hopper | 0.32 |\n\n## Runs not counted\n\n| not | this |\n")
    assert rt.main([*args, "--check"]) == 1
    assert "table1 (from" in capsys.readouterr().out
    assert rt.main(args) == 0
    text = readme.read_text()
    assert "| fresh |" in text and "- **Runs**: 63: 40 done." in text and text.endswith("end\n")
    assert "| Hopper | 0.32 |" in text and "| not | this |" not in text
    assert f"{v_begin}\n| Algorithm | better |\n|---|---|\n| TRPO | 2 |\n{v_end}" in text
    assert "| Ant |" not in text and "| no |" not in text
    assert "stale" not in text and "old" not in text and "Statuses" not in text
    assert rt.main([*args, "--check"]) == 0
    ledger.write_text(LEDGER.replace("40 done", "41 done"))  # collected again, table not redone
    assert rt.main([*args, "--check"]) == 1
    assert "campaign (from" in capsys.readouterr().out


def test_the_committed_readme_shows_the_committed_table():
    """Regenerating results/table1 without `make table` (or readme_table) fails here."""
    assert rt.main(["--readme", str(ROOT / "README.md"), "--results", str(ROOT / "results"),
                    "--check"]) == 0


def test_the_verdict_tally_is_the_table_under_its_heading_or_an_error():
    report = ("| a |\n|---|\n| 1 |\n\n## Episodes verdicts, counted\n\n"
              "| Algorithm | worse |\n|---|---|\n| all | 5 |\n\nmore\n")
    assert rt.counted_verdicts(report) == "| Algorithm | worse |\n|---|---|\n| all | 5 |"
    for bad in ("| a |\n|---|\n", "## Episodes verdicts, counted\n\nno table\n",
                "## Episodes verdicts, counted\n\nnone\n\n## Next\n\n| b |\n|---|\n"):
        with pytest.raises(rt.ReadmeTableError):
            rt.counted_verdicts(bad)


def test_the_summarys_counts_are_the_ledgers_and_the_tables():
    """The README's "What we found, in short" repeats the run count and the verdict tally in
    prose; after a collect they must be updated with it (this fails until they are)."""
    import re

    readme = (ROOT / "README.md").read_text()
    summary = readme.split("## What we found, in short", 1)[1].split("\n## ", 1)[0]
    summary = " ".join(summary.split())
    ledger = (ROOT / "results" / rt.LEDGER).read_text()
    done, total = re.search(r"\*\*Runs\*\*: (\d+): (\d+) done", ledger).group(2, 1)
    ran = re.search(r"(\d+) of its (\d+) runs", summary)
    assert ran is not None, "the summary's Table 1 bullet no longer says 'N of its M runs'"
    assert ran.group(1, 2) == (done, total), "README summary: update the count of runs done"
    tally = rt.counted_verdicts((ROOT / "results" / rt.FULL_TABLE).read_text())
    row = next(line for line in tally.splitlines() if line.startswith("| all |"))
    better, within, worse, nc, missing = (int(x) for x in row.strip("|").split("|")[1:])
    said = re.search(r"Of the 21 cells, (\d+) cross \*better\*(?: \([^)]*\))?[^,]*, (\d+) "
                     r"\*within\*, (\d+) \*worse\*, (\d+) are \*not comparable\*"
                     r"(?: \([^)]*\))?(?:, (\d+) ha(?:s|ve) no run)?", summary)
    assert said is not None, "the summary's Table 1 bullet no longer states the tally"
    got = tuple(int(x) if x else 0 for x in said.groups())
    assert got == (better, within, worse, nc, missing), \
        f"README summary says {got}, results/table1/table.md {(better, within, worse, nc, missing)}"


def test_the_held_crossings_in_prose_are_seeds_mds():
    """The README says, in its summary and under "Did the crossings hold?", how many of Table
    1's crossings held over 25000 steps; after a collect they must follow seeds.md's counts."""
    import re

    seeds = (ROOT / "results" / "table1" / "seeds.md").read_text()
    counts = {}
    for name in ("TR-c-Q-Prop", "TRPO", "DDPG"):
        row = re.search(rf"^\| {re.escape(name)} \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", seeds,
                        re.M)
        assert row is not None, f"seeds.md has no held summary row for {name}"
        counts[name] = tuple(int(x) for x in row.groups())
    readme = " ".join((ROOT / "README.md").read_text().split())
    pattern = (r"only (\d+) of TR-c-Q-Prop's (\d+) (?:crossings )?and (\d+) of DDPG's (\d+)"
               r"(?: held)?, against all (\d+) of TRPO's")
    pattern2 = (r"all (\d+) of TRPO's held \(by construction\), but only (\d+) of "
                r"TR-c-Q-Prop's (\d+) and (\d+) of DDPG's (\d+); (\d+) and (\d+) did not")
    said = re.search(pattern, readme)
    said2 = re.search(pattern2, readme)
    assert said is not None and said2 is not None, "the README no longer states the counts"
    q, t, d = counts["TR-c-Q-Prop"], counts["TRPO"], counts["DDPG"]
    assert tuple(int(x) for x in said.groups()) == (q[1], q[0], d[1], d[0], t[1])
    assert t[1] == t[0], "a TRPO crossing did not hold: the README says all held"
    assert tuple(int(x) for x in said2.groups()) == (t[0], q[1], q[0], d[1], d[0], q[2], d[2])


def test_the_humanoid_pilots_readme_shows_what_its_runs_give_now():
    """results/humanoid_batch/README.md's report is summarise.py's output on the committed runs:
    a collect that moves a pilot past 3M steps, without ``summarise.py --write``, fails here."""
    script = Path(__file__).parents[1] / "results/humanoid_batch/summarise.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
