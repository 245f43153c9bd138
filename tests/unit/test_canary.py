"""The canary: a notebook whose fact check is false fails nbval as `make test` runs it.

labkit shows its errors in a notebook as a short message (``course.setup`` installs a
custom exception handler); the kernel must still report the cell as failed, or every fact
check of the course would pass whatever the engine did. The same notebook with the claim
true passes, so the failure comes from the fact, not from the set-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.test_run import NBVAL_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
CANARY = ROOT / "tests" / "canary" / "false-fact.ipynb"


def run_nbval(tmp_path: Path, claim_holds: bool) -> subprocess.CompletedProcess[str]:
    """nbval over the canary with the options of make test's notebook stages, no engine."""
    env = {**os.environ, "CANARY_CLAIM_HOLDS": "1" if claim_holds else "0",
           "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "LABKIT_USER": "canary",
           "LABKIT_STATE_DIR": str(tmp_path / "state")}
    env.pop("DOCKER_CONTEXT", None)
    copy = tmp_path / CANARY.name
    copy.write_bytes(CANARY.read_bytes())
    return subprocess.run([sys.executable, "-m", "pytest", "--rootdir", str(tmp_path),
                           *NBVAL_OPTIONS, str(copy)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("claim_holds", [False, True])
def test_a_false_fact_fails_the_notebook_stage(tmp_path: Path, claim_holds: bool) -> None:
    answer = run_nbval(tmp_path, claim_holds)
    said = answer.stdout + answer.stderr
    if claim_holds:
        assert answer.returncode == 0, said
        assert "2 passed" in said or "3 passed" in said, said
    else:
        assert answer.returncode == 1, said
        assert "CheckFailed" in said and "the canary claim holds" in said, said
        assert "1 failed" in said, said
