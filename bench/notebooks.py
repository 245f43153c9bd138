"""Benchmark: the cell time of the whole course, warm.

Runs notebooks/00..09 in order with nbclient, each in a fresh kernel, in one scratch folder,
twice; reports the second (warm) run: one row per notebook (cells, total seconds, the
slowest cell and its first line), the whole course against the 60 s goal, and every cell
over 3 s that is not an experiment. An experiment is a code cell tagged ``experiment``, or
one whose markdown cell just before says how long it takes ("takes about 20 s"): such cells
exist to measure and may take longer, but must say so up front.

    python bench/notebooks.py [--rounds 2] [--timeout 600] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
COURSE_GOAL_S = 60.0
CELL_GOAL_S = 3.0
_SAYS_HOW_LONG = re.compile(r"\btakes? (about|around|up to|roughly)\s+\d+(\s*[-–]\s*\d+)?\s*"
                            r"(s\b|seconds|min)", re.IGNORECASE)


@dataclass(frozen=True)
class CellTime:
    """One executed code cell: where it is, how long it took, whether it measures."""

    notebook: str
    index: int
    seconds: float
    first_line: str
    experiment: bool


def says_how_long(markdown: str) -> bool:
    """True when a markdown cell announces a duration ("takes about 20 s")."""
    return bool(_SAYS_HOW_LONG.search(markdown))


def _seconds(cell: Any) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = datetime.fromisoformat
    return max(0.0, (parse(end.replace("Z", "+00:00")) -
                     parse(start.replace("Z", "+00:00"))).total_seconds())


def cell_times(name: str, nb: Any) -> list[CellTime]:
    """The code cells of an executed notebook with their times (nbclient's record_timing)."""
    out, previous_md = [], ""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            previous_md = cell.source
            continue
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        lines = [x for x in cell.source.splitlines() if x.strip()]
        out.append(CellTime(name, index, _seconds(cell), lines[0][:70] if lines else "",
                            "experiment" in tags or says_how_long(previous_md)))
        previous_md = ""
    return out


def run_once(paths: list[Path], scratch: Path, timeout: int) -> list[CellTime]:
    """Execute each notebook in a fresh kernel in ``scratch``; the cells' times."""
    times: list[CellTime] = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                record_timing=True,
                                resources={"metadata": {"path": str(scratch)}})
        started = time.monotonic()
        try:
            client.execute()
        except CellExecutionError as exc:
            print(f"bench: {path.name} failed: {str(exc)[-2000:]}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"  {path.name}: {time.monotonic() - started:.1f} s wall", flush=True)
        times += cell_times(path.stem, nb)
    return times


def report(times: list[CellTime]) -> list[str]:
    """The table, the course total against its goal, and the slow non-experiment cells."""
    lines = [f"{'notebook':<26} {'cells':>5} {'total s':>8} {'slowest s':>9}  slowest cell"]
    names = list(dict.fromkeys(t.notebook for t in times))
    for name in names:
        cells = [t for t in times if t.notebook == name]
        slow = max(cells, key=lambda t: t.seconds)
        lines.append(f"{name:<26} {len(cells):>5} {sum(t.seconds for t in cells):>8.2f} "
                     f"{slow.seconds:>9.2f}  [{slow.index}] {slow.first_line}")
    total = sum(t.seconds for t in times)
    verdict = "within" if total <= COURSE_GOAL_S else "OVER"
    lines.append(f"whole course: {total:.1f} s of cell time, {verdict} the "
                 f"{COURSE_GOAL_S:.0f} s goal")
    flagged = [t for t in times if t.seconds > CELL_GOAL_S and not t.experiment]
    for t in flagged:
        lines.append(f"  SLOW (> {CELL_GOAL_S:.0f} s, not an experiment): {t.notebook} "
                     f"[{t.index}] {t.seconds:.2f} s  {t.first_line}")
    for t in times:
        if t.experiment and t.seconds > CELL_GOAL_S:
            lines.append(f"  experiment (says how long): {t.notebook} [{t.index}] "
                         f"{t.seconds:.2f} s  {t.first_line}")
    if not flagged:
        lines.append(f"no cell that sets up or shows something takes over {CELL_GOAL_S:.0f} s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of the whole course; the last one is reported (default 2)")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    times: list[CellTime] = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-notebooks-") as scratch:
        for number in range(1, max(1, args.rounds) + 1):
            print(f"course run {number} of {args.rounds}"
                  f"{' (warm: reported)' if number == args.rounds else ''}", flush=True)
            times = run_once(paths, Path(scratch), args.timeout)
    print("\n".join(report(times)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
