"""The README and the docs pages link only to files that exist, and to headings they have.

A relative link ``[text](path#anchor)`` in README.md or docs/*.md must name an existing file
(or folder), and its anchor a heading of that Markdown file, as GitHub makes anchors from
headings. Links inside code blocks and inline code are not links; web links are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, with GitHub's -1, -2 for repeated ones."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The relative links of a page (web and mail links left out)."""
    return [target for target in LINK.findall(_prose(page.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def broken(page: Path) -> list[str]:
    """The page's relative links whose file or heading does not exist, each with the reason."""
    problems = []
    for target in links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no such heading in {dest.name}")
    return problems


def test_slug_follows_github() -> None:
    assert slug("A classroom without Wi-Fi: bundles") == "a-classroom-without-wi-fi-bundles"
    assert slug("The `labkit` command") == "the-labkit-command"
    assert slug("What `make test` runs") == "what-make-test-runs"


def test_repeated_headings_get_numbered_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Setup\n\n```\n# not a heading\n```\n\n## Setup\n")
    assert anchors(page) == {"title", "setup", "setup-1"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Part one\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#part-one) [web](https://example.org/x) `[code](nope.md)`\n"
                    "[gone](missing.md) [bad anchor](other.md#part-two) [self](#nowhere)\n")
    problems = [p.split(":")[0] for p in broken(page)]
    assert problems == ["missing.md", "other.md#part-two", "#nowhere"]


def test_the_pages_exist() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "SETUP.md", "ENGINES.md", "OFFLINE.md", "INSTRUCTORS.md", "CI.md",
            "TESTING.md", "BENCHMARKS.md", "MEASUREMENTS.md", "ARCHITECTURE.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == []
