"""Cache experiments: the same change built with two orders of a Dockerfile, measured.

The lab's Dockerfile copies ``app.py`` last; the other one copies it before
``RUN pip install flask``. Each round writes an ``app.py`` that was never built before
(its message carries a fresh random token: both builders key ``COPY`` on the file's
content, so an old message would come from the cache), rebuilds, and records which steps
the builder executed and how long they took (BuildKit's own times, or the classic
builder's stream).

Everything here returns data (dataclasses, DataFrames); the chart is in
:mod:`labkit.render.experiments_plots`.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.course import DOCKERFILE, HELLO, WORKSPACE, Check, app_source
from labkit.engine import BASE_IMAGE
from labkit.images import remove_replaced

if TYPE_CHECKING:
    import pandas as pd

    from labkit.engine import DockerCommand
    from labkit.images import BuilderChoice, BuildResult

LAB_ORDER = "lab-order"
COPY_FIRST = "copy-first"

COPY_FIRST_DOCKERFILE = f"""FROM {BASE_IMAGE}
COPY app.py /app.py
RUN pip install flask
CMD ["python", "app.py"]
"""

DOCKERFILES: dict[str, str] = {LAB_ORDER: DOCKERFILE, COPY_FIRST: COPY_FIRST_DOCKERFILE}
FOLDER = WORKSPACE / "cache-lab"
ROLE = "cache-lab"
COLUMNS = ["dockerfile", "round", "rebuilt_steps", "rebuilt", "seconds", "build_seconds"]


@dataclass(frozen=True)
class Round:
    """One measured rebuild after a change of ``app.py``.

    ``rebuilt`` lists the keywords of the Dockerfile's steps the builder executed (FROM left
    out; BuildKit has no step for metadata such as CMD); ``seconds`` is the time of the
    Dockerfile's steps, ``build_seconds`` the whole build.
    """

    dockerfile: str
    round: int
    rebuilt: tuple[str, ...]
    seconds: float
    build_seconds: float
    image_id: str = ""


def measure(dockerfile: str, round_no: int, result: BuildResult) -> Round:
    """What one build tells about the cache: the steps it executed, and their time."""
    own = result.steps
    rebuilt = tuple(s.keyword for s in own if s.keyword != "FROM" and not s.cached)
    return Round(dockerfile, round_no, rebuilt, sum(s.seconds for s in own), result.seconds,
                 result.image_id)


def rounds_frame(rounds: Iterable[Round]) -> pd.DataFrame:
    """One row per round: dockerfile, round, rebuilt_steps, rebuilt, seconds, build_seconds."""
    import pandas as pd
    return pd.DataFrame(
        [{"dockerfile": r.dockerfile, "round": r.round, "rebuilt_steps": len(r.rebuilt),
          "rebuilt": ", ".join(r.rebuilt), "seconds": round(r.seconds, 3),
          "build_seconds": round(r.build_seconds, 3)} for r in rounds],
        columns=COLUMNS,
    )


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per Dockerfile: rounds, median_seconds, rebuilt_steps and rebuilt (when every round
    agrees; else the most frequent), and same_every_round."""
    import pandas as pd
    rows = []
    for name, group in frame.groupby("dockerfile", sort=False):
        rebuilt = group["rebuilt"].mode().iloc[0]
        rows.append({
            "dockerfile": name,
            "rounds": len(group),
            "median_seconds": round(float(group["seconds"].median()), 3),
            "rebuilt_steps": len(rebuilt.split(", ")) if rebuilt else 0,
            "rebuilt": rebuilt,
            "same_every_round": bool(group["rebuilt"].nunique() == 1),
        })
    return pd.DataFrame(rows, columns=["dockerfile", "rounds", "median_seconds",
                                       "rebuilt_steps", "rebuilt", "same_every_round"])


@dataclass
class CacheExperiment:
    """The rounds of an experiment, and what they say."""

    rounds: list[Round]
    folder: Path = FOLDER
    tags: dict[str, str] = field(default_factory=dict)
    commands: list[DockerCommand] = field(default_factory=list)
    warm_ups: dict[str, str] = field(default_factory=dict)  # image id of each warm-up build
    builder: BuilderChoice | None = None  # which builder ran the builds, and why
    warm_up_rebuilt: dict[str, tuple[str, ...]] = field(default_factory=dict)  # steps it ran

    @property
    def dockerfiles(self) -> list[str]:
        """The Dockerfiles compared, in the order they were built."""
        return list(dict.fromkeys(r.dockerfile for r in self.rounds))

    def table(self) -> pd.DataFrame:
        """One row per round (see :func:`rounds_frame`), with the build commands."""
        frame = rounds_frame(self.rounds)
        if self.commands:
            frame.attrs["command"] = list(self.commands)
        return frame

    def summary(self) -> pd.DataFrame:
        """One row per Dockerfile (see :func:`summarize`)."""
        return summarize(self.table())

    def rebuilt_per_round(self, dockerfile: str) -> list[tuple[str, ...]]:
        """The steps each round of ``dockerfile`` rebuilt, e.g. ``[("COPY",), ("COPY",)]``."""
        return [r.rebuilt for r in self.rounds if r.dockerfile == dockerfile]

    def median_seconds(self, dockerfile: str) -> float:
        """The median rebuild time of ``dockerfile``'s rounds."""
        times = [r.seconds for r in self.rounds if r.dockerfile == dockerfile]
        if not times:
            raise KeyError(dockerfile)
        return statistics.median(times)

    @property
    def favoured(self) -> str:
        """The Dockerfile the measurement favours: the lowest median rebuild time
        (fewer rebuilt steps break a tie)."""

        def cost(name: str) -> tuple[float, float]:
            steps = statistics.median(len(r) for r in self.rebuilt_per_round(name))
            return (self.median_seconds(name), steps)

        return min(self.dockerfiles, key=cost)


# --------------------------------------------------------------------------- files
def write_dockerfiles(folder: Path | str = FOLDER,
                      dockerfiles: dict[str, str] | None = None) -> dict[str, Path]:
    """Write each Dockerfile into ``folder/<name>/``; returns the build folders."""
    out = {}
    for name, text in (dockerfiles or DOCKERFILES).items():
        path = Path(folder) / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "Dockerfile").write_text(text)
        out[name] = path
    return out


def compare_dockerfiles(dockerfiles: dict[str, str] | None = None) -> pd.DataFrame:
    """The Dockerfiles side by side: one column each, one row per line."""
    import pandas as pd
    columns = {name: [ln for ln in text.splitlines() if ln.strip()]
               for name, text in (dockerfiles or DOCKERFILES).items()}
    height = max((len(lines) for lines in columns.values()), default=0)
    frame = pd.DataFrame({name: lines + [""] * (height - len(lines))
                          for name, lines in columns.items()})
    frame.index = range(1, height + 1)
    return frame


def new_message() -> str:
    """A message for the app that no build has seen before (a random token in it)."""
    return f"hello world {uuid.uuid4().hex[:12]}!"


def image_tag(dockerfile: str) -> str:
    """The image name (in this user's namespace) an experiment builds for ``dockerfile``."""
    return f"cache-{dockerfile}"


# --------------------------------------------------------------------------- run
def run(rounds: int = 3, folder: Path | str = FOLDER, *,
        dockerfiles: dict[str, str] | None = None,
        client: docker.DockerClient | None = None,
        build: Callable[..., BuildResult] | None = None) -> CacheExperiment:
    """Build each Dockerfile once (warm cache), then ``rounds`` times, each after writing
    an app.py never built before.

    Rounds alternate between the Dockerfiles so that a slow moment of the machine or the
    network does not hit one of them only. A round's image is removed once the next round
    replaces it (it would only pile up, untagged); the warm-up images stay as the cache of
    the next run. ``build`` defaults to :func:`labkit.images.build` (a test may pass its own).
    """
    from labkit import images

    cli = client or engine.client()
    build = build or images.build
    folders = write_dockerfiles(folder, dockerfiles)
    last: dict[str, str] = {}
    tags: dict[str, str] = {}
    commands: dict[str, DockerCommand] = {}
    builders: list[BuilderChoice] = []

    def build_app(name: str, message: str) -> BuildResult:
        (folders[name] / "app.py").write_text(app_source(message))
        result = build(folders[name], image_tag(name), role=ROLE, show=False, client=cli)
        tags[name], commands[name] = result.tag, result.command
        builders.append(result.builder)
        return result

    # Warm-up: the course's app, the same every time, so that the cache holds every step
    # before the change (and, from the second run on, this build is itself a cache hit).
    warm_ups: dict[str, str] = {}
    warm_up_rebuilt: dict[str, tuple[str, ...]] = {}
    for name in folders:
        last[name] = _tagged_id(cli, images.image_name(image_tag(name)) + ":latest")
        warm = build_app(name, HELLO)
        warm_ups[name] = warm.image_id
        warm_up_rebuilt[name] = measure(name, 0, warm).rebuilt
        if last[name] == warm_ups[name]:
            del last[name]  # the previous run's last round goes when round 1 replaces it
    measured = []
    for number in range(1, rounds + 1):
        for name in folders:
            result = build_app(name, new_message())
            measured.append(measure(name, number, result))
            previous = last.get(name)
            if previous and previous != result.image_id:  # replaced: it would only pile up
                remove_replaced(previous, result.image_id, client=cli)
            last[name] = result.image_id
    return CacheExperiment(measured, Path(folder), tags, list(commands.values()),
                           warm_ups, builders[-1] if builders else None, warm_up_rebuilt)


def _tagged_id(cli: docker.DockerClient, tag: str) -> str:
    """The id of the image ``tag`` names now, or '' when there is none."""
    try:
        return str(cli.images.get(tag).id)
    except docker.errors.APIError:  # ImageNotFound included
        return ""


# --------------------------------------------------------------------------- the learner
def check_conclusion(conclusion: str | None, results: CacheExperiment) -> Check:
    """The learner's choice of Dockerfile against what the measurement favours.

    ``passed`` is None while ``conclusion`` is empty; never raises for a wrong answer.
    """
    names = results.dockerfiles
    hint = (f"Set conclusion to one of {', '.join(repr(n) for n in names)}: the Dockerfile "
            "whose rebuild after a change of app.py costs less, in the table above.")
    if not conclusion or not str(conclusion).strip():
        return Check("9", None, hint=hint)
    text = " ".join(str(conclusion).lower().replace("_", "-").split())
    named = [n for n in names if n in text or n.replace("-", " ") in text]
    check = Check("9", None, hint=hint)
    if len(named) != 1:
        check.add(False, f"your conclusion names {len(named)} of the Dockerfiles; name one")
        return check.close()
    best = results.favoured
    others = [n for n in names if n != best]
    facts = "; ".join(
        f"{n}: rebuilt {', '.join(results.rebuilt_per_round(n)[-1]) or 'nothing'}, "
        f"median {results.median_seconds(n):.2f} s" for n in [best, *others])
    check.add(named[0] == best, f"you chose {named[0]}; the measurement favours {best} ({facts})")
    return check.close()
