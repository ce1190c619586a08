"""Keep the README's copy of Table 1 the one ``make table`` wrote.

    python -m reproduce.readme_table [--readme README.md] [--results results] [--check]

The README shows ``<results>/table1/table_compact.md`` between the lines
``<!-- table1:begin -->`` and ``<!-- table1:end -->``. This module copies the file in
(``make table`` calls it for the ``table1`` profile), or with ``--check`` exits 1 and says
so when the two differ, so a regenerated table cannot leave stale numbers in the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BEGIN, END = "<!-- table1:begin -->", "<!-- table1:end -->"
SOURCE = Path("table1") / "table_compact.md"


class ReadmeTableError(ValueError):
    pass


def splice(readme: str, table: str) -> str:
    """``readme`` with the text between its markers replaced by ``table``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ReadmeTableError(f"the README needs exactly one {BEGIN} and one {END} line")
    head, rest = readme.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    if old.count("\n") < 1:
        raise ReadmeTableError(f"{BEGIN} and {END} must be on lines of their own, in order")
    return f"{head}{BEGIN}\n{table.strip()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.readme_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readme", default="README.md")
    p.add_argument("--results", default="results")
    p.add_argument("--check", action="store_true", help="only say whether they differ")
    args = p.parse_args(argv)
    readme, source = Path(args.readme), Path(args.results) / SOURCE
    if not source.is_file():
        print(f"reproduce.readme_table: error: {source} does not exist; run `make table` "
              "first", file=sys.stderr)
        return 2
    try:
        text = readme.read_text()
        new = splice(text, source.read_text())
    except (OSError, ReadmeTableError) as exc:
        print(f"reproduce.readme_table: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{readme}: its Table 1 differs from {source}; run "
                  "`python -m reproduce.readme_table`")
            return 1
        print(f"{readme}: its Table 1 is {source}")
        return 0
    if new != text:
        readme.write_text(new)
        print(f"wrote {readme} (Table 1 from {source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
