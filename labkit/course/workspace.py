"""The lab's files: the Flask app, its Dockerfile, the workspace folder and the image name."""

from __future__ import annotations

from pathlib import Path

from labkit.engine import settings

APP_NAME = "python-hello-world"
HELLO = "hello world!"
BEAUTIFUL = "hello beautiful world!"
WORKSPACE = Path("workspace")

APP_TEMPLATE = '''from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "{message}"


if __name__ == "__main__":
    app.run(host="0.0.0.0")
'''

DOCKERFILE = """FROM python:3.11-slim-bookworm
RUN pip install flask
CMD ["python", "app.py"]
COPY app.py /app.py
"""


def app_source(message: str = HELLO) -> str:
    """The lab's Flask app, answering ``message`` on ``/``."""
    return APP_TEMPLATE.format(message=message)


def write_app(message: str = HELLO, folder: Path = WORKSPACE) -> Path:
    """Write ``app.py`` into ``folder`` (as the notebook's ``%%writefile`` cell does)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "app.py"
    path.write_text(app_source(message))
    return path


def write_dockerfile(folder: Path = WORKSPACE, text: str = DOCKERFILE) -> Path:
    """Write the lab's Dockerfile into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Dockerfile"
    path.write_text(text)
    return path


def image_name() -> str:
    """The learner's image, ``<user>/python-hello-world``."""
    return settings().image_name(APP_NAME)
