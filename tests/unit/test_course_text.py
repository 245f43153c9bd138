"""What the notebooks' text promises about themselves, read from their sources (no engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def runs_docker(cell: dict) -> bool:
    """A terminal cell with a line that runs the docker CLI."""
    text = source(cell)
    return (cell["cell_type"] == "code" and text.startswith("%%bash")
            and any(line.strip().startswith("docker ") for line in text.splitlines()))


def test_setup_reaches_the_first_docker_command_within_five_cells() -> None:
    setup = cells("00-setup.ipynb")
    first = next(index for index, cell in enumerate(setup) if runs_docker(cell))
    assert first <= 4, f"the first docker command is in cell {first}"
    words = sum(len(source(cell).split()) for cell in setup[:first]
                if cell["cell_type"] == "markdown")
    assert words <= 200, f"{words} words to read before the first docker command"


def test_setup_ends_with_the_engine_appendix_then_the_next_step() -> None:
    setup = cells("00-setup.ipynb")
    titles = [source(cell).splitlines()[0] for cell in setup if cell["cell_type"] == "markdown"]
    assert titles[-2] == "## Appendix: your engine"
    assert titles[-1].startswith("Next: [1 ·")


def test_the_app_is_as_many_lines_as_step_1_says() -> None:
    step1 = cells("01-python-app.ipynb")
    app = next(source(c) for c in step1 if source(c).startswith("%%writefile workspace/app.py"))
    code_lines = [line for line in app.splitlines()[1:] if line.strip()]
    numbers = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
    claim = re.search(r"in (\w+) lines", source(step1[0]))
    assert claim is not None, "step 1's introduction says how many lines the app is"
    assert numbers[claim.group(1)] == len(code_lines)


def test_no_notebook_asks_flask_for_its_deprecated_version_attribute() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            assert "flask.__version__" not in source(cell), f"{path.name} cell {index}"
