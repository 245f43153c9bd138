"""The `make lab` scripts run under macOS's /bin/bash 3.2: no bash-4 features (no engine needed).

bash 3.2 has no mapfile, no case-changing expansions, no associative arrays, no negative
subscripts, no ``&>>`` or ``|&``; and before bash 4.4, ``"${a[@]}"`` of an empty array is an
"unbound variable" under ``set -u``. No bash 3.2 runs here, so the scripts are read for those
constructs, and the idioms they use instead are run under the bash that is here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The scripts `make lab` runs on a learner's machine. (scripts/engine.sh joins them once its
#: Linux-only install path no longer uses mapfile; scripts/test.sh is Linux-CI only.)
MAKE_LAB_SCRIPTS = ["scripts/lab.sh", "scripts/venv.sh", "scripts/engine.sh"]

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: (what bash 3.2 lacks, a pattern that finds it in a line of code)
BASH4_ONLY: list[tuple[str, re.Pattern[str]]] = [
    ("mapfile/readarray (bash 4.0)", re.compile(r"(^|[\s;&|(])(mapfile|readarray)\b")),
    ("case-changing expansion ${v,,} / ${v^^} (bash 4.0)",
     re.compile(r"\$\{" + NAME + r"(\[[^]]*\])?(,,?|\^\^?)[^}]*\}")),
    ("${v@Q}-style transformation (bash 4.4)", re.compile(r"\$\{[^}]*@[QEPAaKkUuL]\}")),
    ("declare/local -A/-n/-l/-u/-g (bash 4)",
     re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*[Anlug]")),
    ("negative array subscript (bash 4.3)", re.compile(NAME + r"\[\s*-\s*\d+\s*\]")),
    ("&>> redirection (bash 4.0)", re.compile(r"&>>")),
    ("|& pipe (bash 4.0)", re.compile(r"\|&")),
    ("coproc (bash 4.0)", re.compile(r"(^|[\s;&|])coproc\b")),
    ("wait -n (bash 4.3)", re.compile(r"\bwait\s+-n\b")),
    ("shopt globstar (bash 4.0)", re.compile(r"\bglobstar\b")),
    ("case fall-through ;& or ;;& (bash 4.0)", re.compile(r";;?&")),
    ("$BASHPID / $EPOCHSECONDS / $EPOCHREALTIME (bash 4+)",
     re.compile(r"\$\{?(BASHPID|EPOCHSECONDS|EPOCHREALTIME)\b")),
]
GUARDED = re.compile(r"\$\{(" + NAME + r")\[[@*]\]\+\"\$\{\1\[[@*]\]\}\"\}")


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, code) with comments dropped: the shebang and `# ...` to the line's end."""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        code = re.sub(r"(^|\s)#.*$", "", line).rstrip()
        if code:
            lines.append((number, code))
    return lines


def bash4_constructs(path: Path) -> list[str]:
    """Every bash-4-only construct in a script, as 'LINE: what'."""
    found = []
    lines = _code_lines(path)
    text = "\n".join(code for _, code in lines)
    # Arrays that may be empty: made empty, declared as arrays, or read into.
    maybe_empty = set(re.findall(r"(?:^|[\s;])(" + NAME + r")=\(\s*\)", text, re.M))
    maybe_empty |= set(re.findall(r"\b(?:declare|local|typeset)\s+-a\s+(" + NAME + ")", text))
    maybe_empty |= set(re.findall(r"\bread\s+(?:-\w+\s+)*-a\s+(" + NAME + ")", text))
    for number, code in lines:
        found += [f"{number}: {what}" for what, pattern in BASH4_ONLY if pattern.search(code)]
        unguarded = GUARDED.sub("", code)
        for name in sorted(maybe_empty):
            if re.search(r"\$\{" + name + r"\[[@*]\]\}", unguarded):
                found.append(f"{number}: \"${{{name}[@]}}\" of a possibly empty array under "
                             f"set -u (bash < 4.4): write ${{{name}[@]+\"${{{name}[@]}}\"}}")
    return found


@pytest.mark.parametrize("script", MAKE_LAB_SCRIPTS)
def test_make_lab_scripts_use_nothing_newer_than_bash_3_2(script):
    assert bash4_constructs(ROOT / script) == []


@pytest.mark.parametrize("script", MAKE_LAB_SCRIPTS)
def test_make_lab_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0


@pytest.mark.parametrize(("line", "what"), [
    ("mapfile -t missing < <(missing_packages)", "mapfile"),
    ('x=$(readarray -t a <f)', "mapfile"),
    ('echo "${name,,}"', "case-changing"),
    ('echo "${NAME^^}"', "case-changing"),
    ('echo "${a[0]^}"', "case-changing"),
    ('echo "${v@Q}"', "transformation"),
    ("declare -A seen=()", "declare"),
    ("local -n ref=$1", "declare"),
    ('TIMES[-1]+=" FAILED"', "negative"),
    ('echo "${arr[-1]}"', "negative"),
    ("make &>> log", "&>>"),
    ("make |& tee log", "|&"),
    ("wait -n", "wait -n"),
    ('args=()\ncmd "${args[@]}"', "possibly empty"),
    ('local -a args\ncmd "${args[*]}"', "possibly empty"),
])
def test_the_checker_finds_bash4_constructs(tmp_path, line, what):
    script = tmp_path / "s.sh"
    script.write_text("#!/usr/bin/env bash\n" + line + "\n")
    found = bash4_constructs(script)
    assert found, line
    assert what in found[0]


@pytest.mark.parametrize("line", [
    'args=()\ncmd ${args[@]+"${args[@]}"}',
    'PACKAGES=(a b)\nfor p in "${PACKAGES[@]}"; do :; done',
    'echo "${#args[@]} ${x:-a,b} ${y#*,} ${BASH_SOURCE[0]}"',
    "[[ $(id -u) -eq 0 ]] && echo root  # mapfile in a comment is fine",
    'case $x in a) echo a ;; b) echo b ;; esac',
    "cmd >log 2>&1",
])
def test_the_checker_accepts_bash_3_2_code(tmp_path, line):
    script = tmp_path / "s.sh"
    script.write_text("#!/usr/bin/env bash\n" + line + "\n")
    assert bash4_constructs(script) == []


def _bash(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + code],
                          capture_output=True, text=True)


def test_the_guarded_expansion_gives_nothing_for_an_empty_array():
    done = _bash('a=()\nprintf "<%s>" ${a[@]+"${a[@]}"}\necho end')
    assert done.returncode == 0
    assert done.stdout == "<>end\n"  # printf with no arguments prints its format once


def test_the_guarded_expansion_keeps_each_element_whole():
    done = _bash('a=(--flag "two words")\nprintf "<%s>" ${a[@]+"${a[@]}"}')
    assert done.stdout == "<--flag><two words>"


# ------------------------------------------------------------ venv.sh's Python check
def _fake_python(tmp_path: Path, version: str) -> Path:
    """A stand-in interpreter that reports ``version`` to venv.sh's two checks."""
    major, minor, _ = (int(part) for part in version.split("."))
    fake = tmp_path / "python-fake"
    ok = 0 if (major, minor) >= (3, 11) else 1
    fake.write_text("#!/bin/sh\n"
                    f'case "$2" in *exit*) exit {ok} ;; *print*) echo {version} ;; esac\n')
    fake.chmod(0o755)
    return fake


def _venv_sh(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = "/usr/bin:/bin"
    return subprocess.run(["bash", str(ROOT / "scripts/venv.sh")], capture_output=True,
                          text=True, env={"PATH": path, "HOME": env.pop("HOME", "/")} | env)


def test_venv_refuses_an_old_python_naming_it_and_the_way_out(tmp_path):
    fake = _fake_python(tmp_path, "3.9.6")  # macOS's Xcode python3
    done = _venv_sh({"PYTHON": str(fake), "VENV": str(tmp_path / "venv")})
    assert done.returncode == 1
    assert f"{fake} ({fake}) is Python 3.9.6" in done.stderr
    assert "3.11 or newer" in done.stderr
    assert "PYTHON=python3.12 make lab" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_venv_names_a_missing_python(tmp_path):
    done = _venv_sh({"PYTHON": "python3.99-absent", "VENV": str(tmp_path / "venv")})
    assert done.returncode == 1
    assert "no Python found as 'python3.99-absent'" in done.stderr


def test_venv_refuses_an_existing_venv_made_with_an_old_python(tmp_path):
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    _fake_python(tmp_path, "3.10.12").rename(venv_bin / "python")
    new = _fake_python(tmp_path, "3.12.3")
    done = _venv_sh({"PYTHON": str(new), "VENV": str(tmp_path / "venv")})
    assert done.returncode == 1
    assert "made with Python 3.10.12" in done.stderr
    assert f"remove {tmp_path / 'venv'}" in done.stderr
