"""Keep the README's copies of Table 1 and of the campaign's totals the files that wrote them.

    python -m reproduce.readme_table [--readme README.md] [--results results] [--check]

The README shows four generated blocks, each between a pair of marker lines:

- ``<!-- table1:begin -->`` ... ``<!-- table1:end -->``: ``<results>/table1/table_compact.md``
  (``make table``);
- ``<!-- campaign:begin -->`` ... ``<!-- campaign:end -->``: the totals at the head of
  ``<results>/table1/CAMPAIGN.md`` (``make campaign-collect``): its lines between the title and
  the table, without the legend of statuses;
- ``<!-- qprop-vs-trpo:begin -->`` ... ``<!-- qprop-vs-trpo:end -->``: the table of
  ``<results>/table1/compare_qprop-c_vs_trpo.md`` (``make table`` runs ``reproduce.compare``
  on ``table1`` first): TR-c-Q-Prop against TRPO at Table 1's settings, with bootstrap CIs;
- ``<!-- verdicts:begin -->`` ... ``<!-- verdicts:end -->``: the table under ``## Episodes
  verdicts, counted`` in ``<results>/table1/table.md`` (``make table``): the verdicts per
  algorithm, so the README's tally is never copied by hand.

This module copies them in (``make table`` calls it for the ``table1`` profile), or with
``--check`` exits 1 and says which differ, so a regenerated table or ledger cannot leave stale
numbers in the README.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"
SOURCE = Path("table1") / "table_compact.md"
LEDGER = Path("table1") / "CAMPAIGN.md"
COMPARISON = Path("table1") / "compare_qprop-c_vs_trpo.md"
FULL_TABLE = Path("table1") / "table.md"
COUNTED = "## Episodes verdicts, counted"
LEGEND = "- **Statuses**"


class ReadmeTableError(ValueError):
    pass


def ledger_head(ledger: str) -> str:
    """The ledger's totals: its lines after the ``#`` title and before the first table row,
    without the legend of statuses (the README explains those)."""
    lines = ledger.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ReadmeTableError("the ledger does not start with its '# Campaign ledger' title")
    head = []
    for line in lines[1:]:
        if line.startswith("|"):
            break
        if not line.startswith(LEGEND):
            head.append(line)
    if not any(line.startswith("- **") for line in head):
        raise ReadmeTableError("the ledger has no totals before its table")
    return "\n".join(head)


def table_rows(report: str) -> str:
    """A report's first Markdown table (its consecutive ``|`` lines)."""
    rows: list[str] = []
    for line in report.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    if len(rows) < 2:
        raise ReadmeTableError("the report has no Markdown table")
    return "\n".join(rows)


def counted_verdicts(report: str) -> str:
    """The first table under the ``## Episodes verdicts, counted`` heading of ``table.md``."""
    if COUNTED not in report:
        raise ReadmeTableError(f"the full table has no {COUNTED!r} section")
    return table_rows(report.split(COUNTED, 1)[1].split("\n## ", 1)[0])


@dataclass(frozen=True)
class Block:
    name: str
    source: Path  # under --results
    extract: Callable[[str], str]
    made_by: str

    @property
    def markers(self) -> tuple[str, str]:
        return f"<!-- {self.name}:begin -->", f"<!-- {self.name}:end -->"


BLOCKS = (Block("table1", SOURCE, lambda text: text, "make table"),
          Block("campaign", LEDGER, ledger_head, "make campaign-collect"),
          Block("qprop-vs-trpo", COMPARISON, table_rows, "make table"),
          Block("verdicts", FULL_TABLE, counted_verdicts, "make table"))


def splice(readme: str, table: str, markers: tuple[str, str] = (BEGIN, END)) -> str:
    """``readme`` with the text between its ``markers`` replaced by ``table``."""
    begin, end = markers
    if readme.count(begin) != 1 or readme.count(end) != 1:
        raise ReadmeTableError(f"the README needs exactly one {begin} and one {end} line")
    head, rest = readme.split(begin, 1)
    if end not in rest:
        raise ReadmeTableError(f"{begin} and {end} must be on lines of their own, in order")
    old, tail = rest.split(end, 1)
    if old.count("\n") < 1:
        raise ReadmeTableError(f"{begin} and {end} must be on lines of their own, in order")
    return f"{head}{begin}\n{table.strip()}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.readme_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readme", default="README.md")
    p.add_argument("--results", default="results")
    p.add_argument("--check", action="store_true", help="only say whether they differ")
    args = p.parse_args(argv)
    readme = Path(args.readme)
    try:
        text = readme.read_text()
    except OSError as exc:
        print(f"reproduce.readme_table: error: {exc}", file=sys.stderr)
        return 2
    new, stale = text, []
    for block in BLOCKS:
        source = Path(args.results) / block.source
        if not source.is_file():
            print(f"reproduce.readme_table: error: {source} does not exist; run "
                  f"`{block.made_by}` first", file=sys.stderr)
            return 2
        try:
            spliced = splice(new, block.extract(source.read_text()), block.markers)
        except (OSError, ReadmeTableError) as exc:
            print(f"reproduce.readme_table: error: {block.name}: {exc}", file=sys.stderr)
            return 2
        if spliced != new:
            stale.append(f"{block.name} (from {source})")
        new = spliced
    if args.check:
        if stale:
            print(f"{readme}: these blocks differ from their files: {', '.join(stale)}; run "
                  "`python -m reproduce.readme_table`")
            return 1
        print(f"{readme}: its blocks are " + ", ".join(str(Path(args.results) / b.source)
                                                      for b in BLOCKS))
        return 0
    if stale:
        readme.write_text(new)
        print(f"wrote {readme}: " + ", ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
