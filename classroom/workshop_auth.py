"""A workshop's authenticator: a name of one's choice plus the workshop code.

Learners pick a name (1-30 lowercase letters, digits, '-' or '_': it becomes their
LABKIT_USER, their engine's and volumes' names) and type the code the instructor gives the
room. The instructor logs in with their own name and password and is the hub's admin.
Both secrets come from the hub's environment (scripts/classroom.sh keeps them in a 0600
file); they are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import os
import re

from jupyterhub.auth import Authenticator
from traitlets import Unicode

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")


class WorkshopAuthenticator(Authenticator):
    """Name + workshop code for learners, name + password for the instructor."""

    instructor = Unicode("instructor", config=True, help="The instructor's (admin's) name.")

    def validate_username(self, username: str) -> bool:
        return bool(NAME.match(username)) and super().validate_username(username)

    async def authenticate(self, handler, data):  # noqa: ANN001, ANN201
        name = self.normalize_username((data or {}).get("username", "").strip())
        given = (data or {}).get("password", "").encode()
        if not self.validate_username(name):
            return None
        if name == self.instructor:
            secret = os.environ.get("CLASSROOM_INSTRUCTOR_PASSWORD", "")
        else:
            secret = os.environ.get("CLASSROOM_WORKSHOP_CODE", "")
        if secret and hmac.compare_digest(given, secret.encode()):
            return name
        self.log.warning("Refused a login as %r (wrong code or password)", name)
        return None
