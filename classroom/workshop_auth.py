"""A workshop's authenticator: a name that belongs to whoever claimed it first.

Learners pick a name (1-30 lowercase letters, digits, '-' or '_': it becomes their
LABKIT_USER, their engine's and volumes' names), type the code the instructor gives the
room, and a password of their own (8 characters at least). The first login with a name
claims it: the password is kept hashed (scrypt, a salt per name) in a 0600 file of its own
under ``claims_dir``, created atomically (a hard link of a finished file: of two people
claiming one name at once, exactly one wins). Later logins with that name need that
password; someone else with the same name and the room's code is refused.

The instructor logs in with their own name and password (from the hub's environment, made
before the hub opens by scripts/classroom.sh) and is the hub's admin; nobody can claim
that name. Secrets are compared in constant time and never logged.

To let a learner who forgot their password claim their name again:
``python3 classroom/workshop_auth.py forget CLAIMS_DIR NAME``
(``scripts/classroom.sh forget NAME`` on one machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from pathlib import Path

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Integer, Unicode

# labkit's learner-name rule (LABKIT_USER; labkit.learners.records.LEARNER_NAME), written
# again because the hub has no labkit; a unit test holds the two together
NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,29}\Z")  # \Z: no trailing newline
#: scrypt's cost: 2**14 * 8 * 128 bytes = 16 MiB of memory and ~50 ms per check.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * n * r + 2**20)


class Claims:
    """One file per claimed name, ``<dir>/<name>.json``: salt and scrypt hash, 0600."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        if not NAME.match(name):  # the name is a file name here: never a path
            raise ValueError(f"not a learner's name: {name!r}")
        return self.folder / f"{name}.json"

    def read(self, name: str) -> dict | None:
        try:
            return json.loads(self.path(name).read_text())
        except FileNotFoundError:
            return None

    def claim(self, name: str, password: str) -> bool:
        """Claim ``name`` with ``password``: True for the one caller who made the claim."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        salt = secrets.token_bytes(16)
        record = {"scheme": "scrypt", **SCRYPT, "salt": salt.hex(),
                  "hash": _hash(password, salt, **SCRYPT).hex()}
        tmp = self.folder / f".{name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(record, out)
                out.flush()
                os.fsync(out.fileno())
            os.link(tmp, self.path(name))  # atomic, and fails if the name is claimed
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def check(self, name: str, password: str) -> bool | None:
        """None: ``name`` is not claimed; else whether ``password`` is its password."""
        record = self.read(name)
        if record is None:
            return None
        given = _hash(password, bytes.fromhex(record["salt"]),
                      record["n"], record["r"], record["p"])
        return hmac.compare_digest(given, bytes.fromhex(record["hash"]))

    def forget(self, name: str) -> bool:
        """Drop the claim on ``name`` (the learner claims it again at their next login)."""
        try:
            self.path(name).unlink()
            return True
        except FileNotFoundError:
            return False


class WorkshopAuthenticator(Authenticator):
    """Name + workshop code + own password for learners; name + password for the instructor."""

    instructor = Unicode("instructor", config=True, help="The instructor's (admin's) name.")
    claims_dir = Unicode(
        config=True, help="Folder of the learners' claimed names (hashed passwords).")
    minimum_password_length = Integer(8, config=True,
                                      help="Shortest password a learner may choose.")

    def _default_claims_dir(self) -> str:
        return os.environ.get("CLASSROOM_CLAIMS_DIR", "")

    def validate_username(self, username: str) -> bool:
        return bool(NAME.match(username)) and super().validate_username(username)

    def refuse(self, name: str, why: str, shown: str | None = None) -> None:
        """Log the refusal (the name and why, never a secret); show ``shown`` on the form."""
        self.log.warning("Refused a login as %r: %s", name, why)
        if shown:
            raise web.HTTPError(403, shown)

    async def authenticate(self, handler, data):  # noqa: ANN001, ANN201
        data = data or {}
        name = self.normalize_username(str(data.get("username", "")).strip())
        password = str(data.get("password", ""))
        if not self.validate_username(name):
            return self.refuse(name[:40], "not a valid name")
        if name == self.instructor:
            secret = os.environ.get("CLASSROOM_INSTRUCTOR_PASSWORD", "")
            if secret and hmac.compare_digest(password.encode(), secret.encode()):
                return name
            return self.refuse(name, "wrong instructor password")
        code = os.environ.get("CLASSROOM_WORKSHOP_CODE", "")
        if not (code and hmac.compare_digest(str(data.get("code", "")).encode(),
                                             code.encode())):
            return self.refuse(name, "wrong workshop code")
        if not self.claims_dir:
            return self.refuse(name, "no claims_dir is configured", "The hub is not set up "
                               "for learners yet: tell the instructor.")
        claims = Claims(self.claims_dir)
        known = await asyncio.to_thread(claims.check, name, password)
        if known:
            return name
        if known is False:
            return self.refuse(name, "the name is claimed and the password differs",
                               f"The name {name!r} is taken, or its password is not this "
                               "one. Pick another name, or ask the instructor.")
        if len(password) < self.minimum_password_length:
            return self.refuse(name, "first login with a too short password",
                               f"Choose a password of {self.minimum_password_length} "
                               "characters or more: it keeps the name yours.")
        if await asyncio.to_thread(claims.claim, name, password):
            self.log.info("%r claimed their name", name)
            return name
        # someone claimed it between our check and our claim: theirs, unless same password
        if await asyncio.to_thread(claims.check, name, password):
            return name
        return self.refuse(name, "the name was claimed at the same moment by someone else",
                           f"The name {name!r} is taken. Pick another name.")


def main(argv: list[str]) -> int:
    """``forget CLAIMS_DIR NAME``: let NAME be claimed again (their password forgotten)."""
    if len(argv) != 3 or argv[0] != "forget":
        print("usage: workshop_auth.py forget CLAIMS_DIR NAME", file=sys.stderr)
        return 2
    folder, name = argv[1], argv[2]
    if not NAME.match(name):
        print(f"not a learner's name: {name!r}", file=sys.stderr)
        return 2
    if Claims(folder).forget(name):
        print(f"{name}: forgotten; their next login with the workshop code claims the name "
              "again, with the password they type then")
        return 0
    print(f"{name}: nobody has claimed this name", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
