"""JupyterLab in the dev container: .devcontainer/lab.sh puts this directory on JUPYTER_CONFIG_PATH.

The root URL opens the course's first notebook. In a GitHub codespace the browser reaches
JupyterLab through the codespace's forwarded address, https://NAME-PORT.DOMAIN, not through
127.0.0.1: JupyterLab must accept requests from that origin (else kernels never connect),
and the link it prints should be that address, so one click opens the course with its token.
Only this codespace's own addresses are allowed, never any origin.
"""

import os
import re

c = get_config()  # noqa: F821  (jupyter_server provides get_config when it reads this file)

c.LabApp.default_url = "/lab/tree/00-setup.ipynb"

codespace = os.environ.get("CODESPACE_NAME")
if codespace:
    domain = os.environ.get("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN") or "app.github.dev"
    port = os.environ.get("LAB_PORT") or "8888"
    c.ServerApp.allow_origin_pat = rf"https://{re.escape(codespace.lower())}-\d+\.{re.escape(domain)}$"
    c.ServerApp.custom_display_url = f"https://{codespace}-{port}.{domain}"
