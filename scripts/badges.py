#!/usr/bin/env python3
"""The README's launch badges (Codespaces, Binder), written for this repository's GitHub path.

    make badges                     # the path from `git remote get-url origin` (a GitHub URL)
    make badges REPO=owner/name     # or given
    python3 scripts/badges.py --check

The badges live in README.md between two marker comments. A clone that does not know its
GitHub path keeps a sentence there saying how to make them, never a placeholder badge.
--check exits 1 when the block is not what this script writes (edited by hand, or an
OWNER/REPO placeholder). Two cases are only a note, so that the first CI run of a fresh
GitHub fork passes: badges for another repository than the origin (the fork's upstream:
they still work), and no badges yet though the origin is on GitHub (upstream's README has
the sentence saying how to open the course; only the fork's owner can add badges).
Standard library only: it runs before the venv exists.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

START = "<!-- badges: start (written by `make badges`, scripts/badges.py) -->"
END = "<!-- badges: end -->"

FIRST_NOTEBOOK = "notebooks/00-setup.ipynb"
CODESPACES = (
    "[![Open in GitHub Codespaces](https://github.com/codespaces/badge.svg)]"
    "(https://codespaces.new/{repo}?quickstart=1)"
)
BINDER = (
    "[![Read on Binder](https://mybinder.org/badge_logo.svg)]"
    "(https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/{notebook})"
)
NO_REPO = (
    "The Codespaces and Binder badges name this repository's GitHub path, which this copy\n"
    "does not know yet: run `make badges` in a clone whose `origin` is on GitHub (or\n"
    "`make badges REPO=owner/name`) and commit README.md. Until then: open the repository on\n"
    "GitHub, then Code → Codespaces → Create codespace; on mybinder.org, enter its URL."
)

#: A GitHub owner (user or organisation) and repository name.
REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_GITHUB_URL = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/"  # https://github.com/o/n, https://user@github.com/o/n
    r"|ssh://git@github\.com/"  # ssh://git@github.com/o/n
    r"|git@github\.com:"  # git@github.com:o/n
    r"|git://github\.com/)"
    r"(?P<repo>[^/\s]+/[^/\s]+?)(?:\.git)?/?$"
)


class BadgeError(Exception):
    """A README without the markers, or a repository path that is not owner/name."""


def repo_from_url(url: str) -> str | None:
    """``owner/name`` of a GitHub remote URL (https, ssh or scp form), else None."""
    match = _GITHUB_URL.match(url.strip())
    if not match or not REPO.match(match.group("repo")):
        return None
    return match.group("repo")


def origin_repo(cwd: Path = ROOT) -> str | None:
    """``owner/name`` of the `origin` remote when it is on GitHub; None otherwise."""
    try:
        run = subprocess.run(["git", "remote", "get-url", "origin"], cwd=cwd,
                             capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return repo_from_url(run.stdout) if run.returncode == 0 else None


def block(repo: str | None) -> str:
    """The text between the markers: the two badges for ``repo``, or how to make them."""
    if repo is None:
        return NO_REPO
    if not REPO.match(repo):
        raise BadgeError(f"{repo!r} is not a GitHub path of the form owner/name")
    return "\n".join([CODESPACES.format(repo=repo),
                      BINDER.format(repo=repo, notebook=FIRST_NOTEBOOK)])


def _span(readme: str) -> tuple[int, int]:
    if readme.count(START) != 1 or readme.count(END) != 1:
        raise BadgeError(f"README.md needs exactly one {START!r} and one {END!r} line")
    begin, end = readme.index(START) + len(START), readme.index(END)
    if end < begin:
        raise BadgeError("README.md's badge end marker comes before its start marker")
    return begin, end


def current(readme: str) -> str:
    """The text between the markers now."""
    begin, end = _span(readme)
    return readme[begin:end].strip("\n")


def render(readme: str, repo: str | None) -> str:
    """README text with the block rewritten for ``repo``."""
    begin, end = _span(readme)
    return readme[:begin] + "\n" + block(repo) + "\n" + readme[end:]


def badge_repo(readme: str) -> str | None:
    """The repository the README's badges name; None for the 'not known yet' sentence.

    Raises BadgeError when the block is neither what block() writes for one repository
    nor the sentence (a placeholder, a hand edit, two badges naming two repositories).
    """
    text = current(readme)
    if text == NO_REPO:
        return None
    match = re.search(r"codespaces\.new/([^?)\s]+)", text)
    if match and REPO.match(match.group(1)) and text == block(match.group(1)):
        return match.group(1)
    raise BadgeError("the README's badge block is not what `make badges` writes "
                     "(a placeholder or a hand edit): run `make badges` (REPO=owner/name)")


def check(readme: str, origin: str | None) -> tuple[bool, str]:
    """(ok, message) for the README against the origin's GitHub path (None: not GitHub)."""
    if "OWNER/REPO" in readme:
        return False, "README.md still has an OWNER/REPO placeholder: run `make badges`"
    try:
        named = badge_repo(readme)
    except BadgeError as err:
        return False, str(err)
    if named is None and origin is not None:
        # A fresh fork's first CI run: its README is upstream's, whose sentence says how
        # to open the course without badges. Only the fork's owner can add them.
        return True, (f"note: README.md has no launch badges yet though origin is "
                      f"github.com/{origin} (a fresh fork or clone?): run `make badges` "
                      "and commit README.md")
    if named is None:
        return True, ("no badges yet (origin is not a GitHub repository): "
                      "`make badges REPO=owner/name`")
    if origin is not None and named != origin:
        return True, (f"note: the badges open github.com/{named}, origin is github.com/{origin} "
                      "(a fork?): `make badges` points them at origin")
    return True, f"the badges open github.com/{named}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="owner/name on GitHub (default: from the origin remote)")
    parser.add_argument("--readme", type=Path, default=README, help="default: README.md")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the badges are missing or placeholders")
    args = parser.parse_args(argv)
    readme = args.readme.read_text()
    origin = origin_repo(args.readme.resolve().parent)
    try:
        if args.check:
            ok, message = check(readme, args.repo or origin)
            print(f"badges: {message}", file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 1
        repo = args.repo or origin
        if repo is None:
            print("badges: origin is not a GitHub repository: name it, "
                  "`make badges REPO=owner/name`", file=sys.stderr)
            return 1
        new = render(readme, repo)
    except BadgeError as err:
        print(f"badges: {err}", file=sys.stderr)
        return 1
    if new == readme:
        print(f"badges: README.md already opens github.com/{repo}")
    else:
        args.readme.write_text(new)
        print(f"badges: README.md now opens github.com/{repo} (Codespaces, Binder); commit it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
