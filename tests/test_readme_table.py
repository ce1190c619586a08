"""reproduce.readme_table: the README's Table 1 is the file `make table` wrote."""

from __future__ import annotations

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


def test_the_command_writes_then_checks(tmp_path: Path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{rt.BEGIN}\n| stale |\n{rt.END}\n")
    src = tmp_path / "results" / rt.SOURCE
    args = ["--readme", str(readme), "--results", str(tmp_path / "results")]
    assert rt.main([*args, "--check"]) == 2  # no table written yet
    assert "run `make table` first" in capsys.readouterr().err
    src.parent.mkdir(parents=True)
    src.write_text("| fresh |\n")
    assert rt.main([*args, "--check"]) == 1
    assert rt.main(args) == 0 and "| fresh |" in readme.read_text()
    assert "stale" not in readme.read_text()
    assert rt.main([*args, "--check"]) == 0


def test_the_committed_readme_shows_the_committed_table():
    """Regenerating results/table1 without `make table` (or readme_table) fails here."""
    assert rt.main(["--readme", str(ROOT / "README.md"), "--results", str(ROOT / "results"),
                    "--check"]) == 0
