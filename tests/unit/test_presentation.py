"""labkit.engine.presentation: results reach the rendering layer by type, loaded when shown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.engine import docker, presentation


def test_a_result_s_html_loads_the_rendering_layer_only_when_asked():
    code = ("import sys\n"
            "from labkit.registry import TaggedName\n"
            "from labkit.engine import docker\n"
            "before = 'labkit.render' in sys.modules\n"
            "page = TaggedName('h2/app', 'v1', docker('tag', 'a', 'h2/app:v1'))._repr_html_()\n"
            "print(before, 'labkit.render' in sys.modules, 'h2/app:v1' in page)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True", "True"]


def test_show_uses_the_live_observers_the_rendering_layer_registered():
    from labkit.render.builds import BuildProgress
    from labkit.render.pushes import PushProgress

    command = docker("build", ".")
    [build] = presentation.build_observers(command, show=True, observer=None)
    [push] = presentation.push_observers("h2/app:v1", show=True, observer=None)
    assert isinstance(build, BuildProgress)
    assert isinstance(push, PushProgress)
    assert presentation.build_observers(command, show=False, observer=None) == []


def test_a_result_nobody_renders_is_a_clear_error():
    class Unknown:
        pass

    with pytest.raises(LookupError, match="Unknown"):
        presentation.html_of(Unknown())
