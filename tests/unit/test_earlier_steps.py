"""What ``course.ensure`` prints: one line when nothing was missing, else one line per
action with the command that does the same, then its notes."""

from __future__ import annotations

from pathlib import Path

from labkit.course import Action, Ensured


def test_nothing_missing_is_one_line_naming_the_image() -> None:
    done = Ensured(step=3, app=Path("workspace/app.py"), image="ann/python-hello-world",
                   image_id="sha256:" + "ab" * 32)
    assert done.lines() == ["Earlier steps: done. This step uses your image "
                            "ann/python-hello-world (abababababab), as you left it."]


def test_each_action_is_one_line_with_its_command_then_the_notes() -> None:
    done = Ensured(step=3, app=Path("workspace/app.py"), image="ann/python-hello-world",
                   image_id="sha256:" + "cd" * 32,
                   actions=[Action("built your image ann/python-hello-world (cdcdcdcdcdcd), "
                                   "which was missing",
                                   "$ docker build -t ann/python-hello-world workspace")],
                   notes=["workspace/app.py has changed since your image was built"])
    lines = done.lines()
    assert len(lines) == 3
    assert lines[1].strip().endswith("$ docker build -t ann/python-hello-world workspace")
    assert lines[2].startswith("Note: workspace/app.py has changed")
    assert str(done) == "\n".join(lines)
