"""The one size formatter: table text, and the docker CLI's own form."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.engine.sizes import human_size


def test_table_sizes():
    assert [human_size(x) for x in (5, 1500, 2_500_000, 3_210_000_000_000)] == [
        "5 B", "1.5 kB", "2.5 MB", "3,210.0 GB"]


def test_missing_values_are_blank():
    assert [human_size(x) for x in (None, float("nan"), pd.NA)] == ["", "", ""]


@pytest.mark.parametrize(("size", "text"), [(0, "0B"), (999, "999B"), (1500, "1.5kB"),
                                            (4987613, "4.99MB"), (187679512, "188MB"),
                                            (2_500_000_000, "2.5GB")])
def test_docker_form_matches_the_cli(size, text):
    assert human_size(size, docker=True) == text
