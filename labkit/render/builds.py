"""Rendering: live build progress in a notebook (ipywidgets), plain text elsewhere.

Nothing here talks to the engine; it only shows what :mod:`labkit.images.builder` reports.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from labkit.engine import DockerCommand, human_size, register_build_renderer, settings, strip_ansi

if TYPE_CHECKING:
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from labkit.engine import LabkitError
    from labkit.images import BuildEvent, BuildResult, BuildStep

LOG_LINES = 200  # lines kept in the live log box
_REFRESH = 0.1  # seconds between two refreshes of the log box


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can render)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _widgets() -> Any | None:
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


def step_note(step: BuildStep) -> str:
    """``cached``/``rebuilt in 1.23 s``/``base image``."""
    if step.status == "base":
        return "base image"
    if step.cached:
        return "cached"
    return f"rebuilt in {step.seconds:.2f} s"


def terminal_line(step: BuildStep) -> str:
    """A finished step as the learner's terminal shows it: ``=> CACHED [2/4] RUN pip install
    flask`` or ``=> [4/4] COPY app.py .  0.1s`` (BuildKit), ``Step 2/4 : ... -> cached``
    (the classic builder)."""
    if not step.buildkit:
        return f"{step.title}  -> {step_note(step)}"
    if step.cached:
        return f"=> CACHED {step.title}"
    return f"=> {step.title}  {step.seconds:.1f}s"


def summary(result: BuildResult) -> str:
    """One line about a finished build."""
    return (
        f"Built {result.tag} ({result.short_id}) in {result.seconds:.2f} s: "
        f"{len(result.cached_steps)} cached, {len(result.rebuilt_steps)} rebuilt."
    )


def builder_sentence(result: BuildResult) -> str:
    """Which builder ran, and why (one sentence)."""
    return f"Built with {result.builder.label}: {result.builder.reason}"


def show_command(command: DockerCommand | Iterable[DockerCommand]) -> None:
    """Print the equivalent ``docker`` command(s), unless LABKIT_HIDE_COMMANDS is set."""
    if not settings().show_commands:
        return
    commands = [command] if isinstance(command, DockerCommand) else list(command)
    for cmd in commands:
        print(f"$ {cmd}")


class StaticOutput:
    """A finished output that reads anywhere: HTML for notebooks, GitHub and nbviewer, and
    the same facts as plain text (a terminal, ``print``, a text-only viewer)."""

    def __init__(self, html_text: str, plain: str) -> None:
        self.html = html_text
        self.text = strip_ansi(plain)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self.html}

    def __str__(self) -> str:
        return self.text


def _steps_rows(steps: Iterable[BuildStep]) -> list[dict[str, str]]:
    return [{"step": f"{s.number}/{s.total}", "instruction": s.instruction,
             "result": step_note(s)} for s in steps]


def build_output(steps: list[BuildStep], command: DockerCommand | None, log: list[str], *,
                 result: BuildResult | None = None, error: LabkitError | None = None,
                 log_lines: int = 40) -> StaticOutput:
    """A build's final state: its summary (or failure), the equivalent command, one row per
    step (cached/rebuilt and seconds), and the log: all of it folded away after a success,
    its last lines (the error's own tail first) after a failure."""
    if error is not None:
        head = f"Build failed: {error.message}"
        tail = (getattr(error, "log_tail", "") or "").splitlines() or log[-log_lines:]
    else:
        head = summary(result) if result is not None else "Build finished."
        tail = []
    rows = _steps_rows(steps)
    why = builder_sentence(result) if result is not None else ""
    table = "".join(
        f"<tr><td>{html.escape(r['step'])}</td><td style='text-align:left'>"
        f"<code>{html.escape(r['instruction'])}</code></td>"
        f"<td style='text-align:left'>{html.escape(r['result'])}</td></tr>" for r in rows)
    clean_log = [strip_ansi(x) for x in log[-LOG_LINES:]]
    parts = [f"<div class='labkit-build labkit-build-{'failed' if error else 'done'}'>",
             f"<p><b>{html.escape(head)}</b></p>"]
    if why:
        parts.append(f"<p class='labkit-builder'>{html.escape(why)}</p>")
    parts.append(command_html(command))
    if rows:
        parts.append("<table><thead><tr><th>step</th><th style='text-align:left'>"
                     "instruction</th><th style='text-align:left'>result</th></tr></thead>"
                     f"<tbody>{table}</tbody></table>")
    if tail:
        parts.append("<p>Last lines of the failing step's output:</p>"
                     f"<pre class='labkit-log'>{html.escape(chr(10).join(tail))}</pre>")
    elif clean_log:
        parts.append(f"<details><summary>build log ({len(clean_log)} lines)</summary>"
                     f"<pre class='labkit-log'>{html.escape(chr(10).join(clean_log))}</pre>"
                     "</details>")
    parts.append("</div>")
    text = [head, *([why] if why else [])]
    if command is not None and settings().show_commands:
        text.append(f"$ {command}")
    text += [terminal_line(s) for s in steps]
    if tail:
        text += ["--- last lines of the failing step's output ---", *tail]
    return StaticOutput("".join(parts), "\n".join(text))


class BuildProgress:
    """Shows a build as it streams: widgets in Jupyter, plain prints otherwise.

    In Jupyter the widgets are displayed with a display id; once the build is over that
    display is replaced by :func:`build_output` (static HTML and text), so the saved
    notebook reads on GitHub and nbviewer, and reopened without a kernel.
    """

    def __init__(self, command: DockerCommand, *, widgets: bool | None = None) -> None:
        self.command = command
        ipw = _widgets() if (in_notebook() if widgets is None else widgets) else None
        self._ipw = ipw
        self._lines: list[str] = []
        self._done_steps: list[str] = []
        self.steps: list[BuildStep] = []  # every step the stream announced, in order
        self.final: StaticOutput | None = None  # what replaced the widgets at the end
        self._handle: Any = None
        self._last_refresh = 0.0
        if ipw is not None:
            from IPython.display import display

            self._bar = ipw.IntProgress(value=0, min=0, max=1, description="Step 0/?",
                                        bar_style="info")
            self._steps = ipw.HTML(value="")
            self._log = ipw.Textarea(value="", disabled=True, rows=10,
                                     layout=ipw.Layout(width="100%"))
            self._box = ipw.VBox([self._bar, self._steps, self._log])
            self._handle = display(self._box, display_id=True)

    # event handling -----------------------------------------------------------------
    def update(self, events: Iterable[BuildEvent]) -> None:
        """Show what the stream just said."""
        for event in events:
            if event.kind == "step" and event.step is not None:
                self._on_step(event.step)
            elif event.kind == "output":
                self._on_output(event.line)
            elif event.kind == "step_done" and event.step is not None:
                self._on_step_done(event.step)
        self._refresh()

    def _on_step(self, step: BuildStep) -> None:
        self.steps.append(step)
        if step.buildkit:  # BuildKit announces steps ahead and runs them as it can
            if self._ipw is not None:
                self._bar.max = max(self._bar.max, len(self.steps))
            return
        self._lines.append(step.title)
        if self._ipw is None:
            print(step.title, flush=True)
            return
        self._bar.max = step.total
        self._bar.value = step.number - 1
        self._bar.description = f"Step {step.number}/{step.total}"

    def _on_output(self, line: str) -> None:
        line = strip_ansi(line)
        self._lines.append(f"  {line}")
        if self._ipw is None:
            print(f"  | {line}", flush=True)

    def _on_step_done(self, step: BuildStep) -> None:
        note = step_note(step)
        if step.buildkit:
            line = terminal_line(step)
            self._lines.append(line)
            if self._ipw is None:
                print(line, flush=True)
                return
            self._bar.value = min(self._bar.max, self._bar.value + 1)
            self._bar.description = f"{self._bar.value}/{self._bar.max} done"
            self._done_steps.append(f"<li><code>{html.escape(line)}</code></li>")
            self._steps.value = f"<ul>{''.join(self._done_steps)}</ul>"
            return
        if self._ipw is None:
            print(f"  -> {note}", flush=True)
            return
        self._bar.value = step.number
        self._done_steps.append(
            f"<li><code>{html.escape(step.title)}</code> &mdash; <b>{html.escape(note)}</b></li>"
        )
        self._steps.value = f"<ul>{''.join(self._done_steps)}</ul>"

    def _refresh(self, force: bool = False) -> None:
        if self._ipw is None:
            return
        now = time.monotonic()
        if force or now - self._last_refresh >= _REFRESH:
            self._log.value = "\n".join(self._lines[-LOG_LINES:])
            self._last_refresh = now

    # end ----------------------------------------------------------------------------
    def _finish(self, output: StaticOutput, bar_style: str) -> None:
        """Leave the final state: the widgets' display replaced by the static output."""
        self.final = output
        self._refresh(force=True)
        self._bar.bar_style = bar_style
        if self._handle is not None:
            self._handle.update(output)
            self._box.close()  # the display no longer shows it; free its comms
            for child in (self._bar, self._steps, self._log):
                child.close()

    def done(self, result: BuildResult) -> None:
        """The build succeeded: say so, with the equivalent command."""
        if self._ipw is None:
            print(summary(result))
            print(builder_sentence(result))
            show_command(self.command)
            return
        self._bar.value = self._bar.max
        self._steps.value += f"<p>{html.escape(summary(result))}</p>"
        steps = result.steps or self.steps
        self._finish(build_output(steps, self.command, self._lines, result=result), "success")

    def fail(self, error: LabkitError) -> None:
        """The build failed: show where, with the log's tail (the error itself is raised)."""
        if self._ipw is None:
            print(f"Build failed: {error.message}")
            return
        self._steps.value += f"<p><b>Build failed:</b> {html.escape(error.message)}</p>"
        self._finish(build_output(self.steps, self.command, self._lines, error=error),
                     "danger")


# --------------------------------------------------------------------------- result cards
def command_html(command: DockerCommand | Iterable[DockerCommand] | None) -> str:
    """The equivalent command(s) as a small terminal-like block."""
    if command is None or not settings().show_commands:
        return ""
    commands = [command] if isinstance(command, DockerCommand) else list(command)
    lines = "\n".join(f"$ {html.escape(str(c))}" for c in commands)
    return f'<pre class="labkit-command" style="margin:0 0 .4em 0">{lines}</pre>'


def card_html(title: str, facts: Mapping[str, object],
              command: DockerCommand | Iterable[DockerCommand] | None = None,
              links: dict[str, str] | None = None) -> str:
    """A result as a title, its key facts and the equivalent docker command."""
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    for label, url in (links or {}).items():
        safe = html.escape(url, quote=True)
        rows += (f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
                 f"<td style='text-align:left'><a class='labkit-link' data-labkit-app-url "
                 f"href='{safe}' "
                 f"target='_blank'>{safe}</a></td></tr>")
    return (f"<div class='labkit-card'><b>{html.escape(title)}</b>{command_html(command)}"
            f"<table>{rows}</table></div>")


def frame_html(frame: pd.DataFrame) -> str | None:
    """A DataFrame that carries ``attrs['command']``, shown with that command above it."""
    command = frame.attrs.get("command")
    table: str | None = frame._repr_html_()
    return command_html(command) + (table or "") if command is not None else table


def enable_command_tables(shell: InteractiveShell) -> None:
    """Show each DataFrame's equivalent docker command above it in this notebook, and its
    columns in full."""
    import pandas as pd

    if shell.display_formatter is None:  # a shell that displays nothing
        return
    pd.set_option("display.max_colwidth", None)  # digests and caveats whole, never "..."
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(pd.DataFrame, frame_html)


register_build_renderer(BuildProgress)  # what images.build(show=True) draws


def result_html(summary: str, command: DockerCommand | Iterable[DockerCommand] | None,
                frame: pd.DataFrame, sizes: str, columns: list[str]) -> str:
    """A result as HTML: its summary in bold, the equivalent command(s), then ``columns`` of
    ``frame`` as a table, with a readable ``size`` column made from the byte counts in ``sizes``."""
    shown = frame.copy()
    shown["size"] = [human_size(x) for x in shown[sizes]]
    table = shown[columns].to_html(index=False, escape=True)
    return f"<p><b>{html.escape(summary)}</b></p>{command_html(command)}{table}"
