"""The classroom's login: the first login with a name claims it (classroom/workshop_auth.py).

The authenticator's own ``authenticate`` runs, as the hub calls it, on a temporary claims
folder: a name claimed with a password is refused to anyone else with the room's code, eight
people claiming one name at once leave exactly one owner, the instructor's name is never
claimed, and the login page JupyterHub renders has the three fields the authenticator reads.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import stat
import subprocess
import sys
from pathlib import Path

import jupyterhub
import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from tornado import web

ROOT = Path(__file__).resolve().parents[2]
CODE = "c0de-of-the-room"
INSTRUCTOR_PASSWORD = "instructor-secret-123"


def _load():
    path = ROOT / "classroom" / "workshop_auth.py"
    spec = importlib.util.spec_from_file_location("classroom_workshop_auth", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


workshop_auth = _load()


@pytest.fixture()
def claims(tmp_path: Path) -> Path:
    return tmp_path / "state" / "claims"


@pytest.fixture()
def auth(claims: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLASSROOM_WORKSHOP_CODE", CODE)
    monkeypatch.setenv("CLASSROOM_INSTRUCTOR_PASSWORD", INSTRUCTOR_PASSWORD)
    return workshop_auth.WorkshopAuthenticator(
        claims_dir=str(claims), instructor="instructor",
        log=logging.getLogger("test.workshop_auth"))


def login(auth, name: str, password: str, code: str | None = CODE) -> str | None:
    """What the hub's login form posts; None or the refusal's message when refused."""
    data = {"username": name, "password": password}
    if code is not None:
        data["code"] = code
    try:
        return asyncio.run(auth.authenticate(None, data))
    except web.HTTPError as refused:
        assert refused.status_code == 403
        return f"refused: {refused.log_message}"


def test_the_first_login_claims_the_name_and_later_ones_need_its_password(auth, claims):
    assert login(auth, "ann", "ann-password-1") == "ann"
    assert login(auth, "ann", "ann-password-1") == "ann"
    assert login(auth, "Ann", "ann-password-1") == "ann"  # names are lower-cased first
    wrong = login(auth, "ann", "ann-password-2")
    assert wrong is not None and wrong.startswith("refused: The name 'ann' is taken")
    assert login(auth, "ann", "") != "ann"


def test_someone_else_with_the_name_and_the_code_is_refused(auth):
    assert login(auth, "ben", "bens-own-password") == "ben"
    other = login(auth, "ben", "mallory-password")
    assert other != "ben" and other.startswith("refused:")
    assert login(auth, "ben", "bens-own-password") == "ben"  # ben's claim still holds


def test_the_workshop_code_is_needed_and_a_wrong_one_claims_nothing(auth, claims):
    assert login(auth, "cat", "cats-password", code="not-the-code") is None
    assert login(auth, "cat", "cats-password", code=None) is None
    assert not (claims / "cat.json").exists()
    assert login(auth, "cat", "cats-password") == "cat"


def test_a_short_first_password_is_refused_and_claims_nothing(auth, claims):
    short = login(auth, "dan", "1234567")
    assert short is not None and "8 characters" in short
    assert not (claims / "dan.json").exists()
    assert login(auth, "dan", "12345678") == "dan"


def test_names_outside_the_rule_are_refused(auth, claims):
    for name in ("../etc", "a b", "x" * 31, "-dash", ""):
        assert login(auth, name, "long-enough-pw") is None, name
    assert not claims.exists() or list(claims.iterdir()) == []


def test_the_claim_is_a_private_scrypt_hash(auth, claims):
    assert login(auth, "eve", "eves-password") == "eve"
    path = claims / "eve.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(claims.stat().st_mode) == 0o700
    text = path.read_text()
    assert "eves-password" not in text
    record = workshop_auth.Claims(claims).read("eve")
    assert record["scheme"] == "scrypt" and len(bytes.fromhex(record["salt"])) == 16
    assert [p.name for p in claims.iterdir()] == ["eve.json"]  # no temporary file left
    # a salt per name: the same password gives another hash under another name
    assert login(auth, "fay", "eves-password") == "fay"
    assert workshop_auth.Claims(claims).read("fay")["hash"] != record["hash"]


def test_eight_people_claiming_one_name_at_once_leave_one_owner(auth, claims):
    passwords = [f"password-number-{i}" for i in range(8)]

    async def everyone() -> list:
        async def one(password: str):
            try:
                return await auth.authenticate(None, {"username": "gus", "code": CODE,
                                                      "password": password})
            except web.HTTPError:
                return None
        return await asyncio.gather(*(one(p) for p in passwords))

    results = asyncio.run(everyone())
    winners = [p for p, r in zip(passwords, results, strict=True) if r == "gus"]
    assert len(winners) == 1, results
    assert [p.name for p in claims.iterdir()] == ["gus.json"]
    assert workshop_auth.Claims(claims).check("gus", winners[0]) is True
    for loser in set(passwords) - set(winners):
        assert login(auth, "gus", loser) != "gus"


def test_the_instructor_logs_in_with_their_password_and_their_name_cannot_be_claimed(
        auth, claims):
    assert login(auth, "instructor", INSTRUCTOR_PASSWORD, code=None) == "instructor"
    assert login(auth, "instructor", INSTRUCTOR_PASSWORD) == "instructor"
    for name in ("instructor", "Instructor"):
        assert login(auth, name, "a-new-password") is None
        assert login(auth, name, CODE) is None
    assert not claims.exists() or list(claims.iterdir()) == []


def test_without_an_instructor_password_nobody_is_the_instructor(auth, monkeypatch):
    monkeypatch.delenv("CLASSROOM_INSTRUCTOR_PASSWORD")
    assert login(auth, "instructor", "", code=None) is None
    assert login(auth, "instructor", "anything-at-all") is None


def test_refusals_are_logged_without_secrets(auth, caplog):
    login(auth, "hal", "hals-password")
    with caplog.at_level(logging.INFO, logger="test.workshop_auth"):
        login(auth, "hal", "guessed-password")
        login(auth, "ivy", "ivys-password", code="guessed-code")
        login(auth, "instructor", "guessed-instructor")
    text = caplog.text
    assert "Refused a login as 'hal'" in text and "Refused a login as 'ivy'" in text
    for secret in ("guessed-password", "guessed-code", "guessed-instructor", CODE,
                   "hals-password", INSTRUCTOR_PASSWORD):
        assert secret not in text


def test_forget_lets_the_name_be_claimed_again(auth, claims):
    assert login(auth, "jo", "jos-first-password") == "jo"
    script = ROOT / "classroom" / "workshop_auth.py"
    done = subprocess.run([sys.executable, str(script), "forget", str(claims), "jo"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([sys.executable, str(script), "forget", str(claims), "jo"],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "nobody has claimed" in again.stderr
    bad = subprocess.run([sys.executable, str(script), "forget", str(claims), "../x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert login(auth, "jo", "jos-new-password") == "jo"
    assert login(auth, "jo", "jos-first-password") != "jo"


def test_the_login_page_has_the_name_the_code_and_the_password(auth):
    """The classroom's login.html, rendered by JupyterHub's own template loader."""
    base = str(Path(jupyterhub.__file__).resolve().parents[3] / "share" / "jupyterhub"
               / "templates")
    if not Path(base, "login.html").exists():  # an installation with templates elsewhere
        from jupyterhub.app import JupyterHub
        base = JupyterHub()._template_paths_default()[0]
    loader = ChoiceLoader([PrefixLoader({"templates": FileSystemLoader([base])}, "/"),
                           FileSystemLoader([workshop_auth.TEMPLATES, base])])
    env = Environment(loader=loader, autoescape=True)
    page = env.get_template("login.html").render(
        authenticator=auth, authenticator_login_url="/hub/login", xsrf="x",
        login_error="The name 'ann' is taken", username="ann", static_url=lambda p, **k: p,
        base_url="/hub/", prefix="/", login_url="/hub/login", logout_url="/hub/logout",
        user=None, parsed_scopes=set(), version_hash="", services=[])
    for field in ('name="username"', 'name="code"', 'name="password"', 'name="_xsrf"'):
        assert field in page, field
    assert page.index('name="username"') < page.index('name="code"') < page.index(
        'name="password"')
    assert "The name &#39;ann&#39; is taken" in page


@pytest.mark.parametrize("name", ["ann", "a", "ann-2_b", "x" * 30, "", "Ann", "-ann", "_a",
                                  "x" * 31, "ann.home", "a/b", "ann\n"])
def test_a_login_name_is_a_labkit_user_name(name: str) -> None:
    """The hub's name rule is labkit's (LABKIT_USER names containers and folders)."""
    from labkit.learners import records as learner_progress

    assert bool(workshop_auth.NAME.match(name)) == learner_progress.is_learner_name(name)
