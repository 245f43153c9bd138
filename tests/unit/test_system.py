"""The retry of engine-wide calls, without an engine: when to ask again and when to stop."""

from __future__ import annotations

import pytest
from docker.errors import APIError

from labkit.engine import disk as system

from .conftest import FakeClient


class Response:
    status_code = 500
    url = "http://engine/system/df"
    reason = "Internal Server Error"


def refusal(text: str) -> APIError:
    return APIError("500 Server Error", response=Response(), explanation=text)


def test_asks_again_while_another_disk_usage_runs() -> None:
    answers = [refusal("a disk usage operation is already running")] * 3 + [{"Images": []}]
    waits: list[float] = []

    def call() -> dict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert system.one_at_a_time(call, "docker system df", sleep=waits.append) == {"Images": []}
    assert len(waits) == 3 and all(0 < w <= 3 for w in waits)


def test_another_error_is_raised_at_once() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise refusal("no such image")

    with pytest.raises(APIError):
        system.one_at_a_time(call, "docker image prune", sleep=lambda _: None)
    assert calls == [1]


def test_a_refusal_that_lasts_ends_in_engine_busy() -> None:
    def call() -> None:
        raise refusal("a prune operation is already running")

    with pytest.raises(system.EngineBusy) as caught:
        system.one_at_a_time(call, "docker image prune", timeout=0, sleep=lambda _: None)
    assert "docker image prune" in caught.value.message and caught.value.hint


def test_disk_usage_is_asked_again_when_a_snapshot_vanished_mid_count() -> None:
    answers = [refusal("NotFound: snapshot sha256:79-parent-view-26 does not exist: not found"),
               {"LayersSize": 1}]

    def df() -> dict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert system.one_at_a_time(FakeClient(df=df).df, "docker system df", sleep=lambda _: None,
                                again=system.is_busy_or_vanished) == {"LayersSize": 1}
    assert not system.is_busy(refusal("snapshot x does not exist"))


def test_a_vanished_cached_step_is_told_from_a_missing_base_image() -> None:
    assert system.is_vanished_image('The build failed: unable to find image "sha256:5fc0"')
    assert not system.is_vanished_image('unable to find image "python:3.11-slim-bookworm"')


def test_a_layer_committed_twice_at_once_is_built_again() -> None:
    assert system.is_vanished_image("The build failed: failed to export layer: CreateDiff: "
                                    "mount callback failed ... failed to commit: rename ...")
    assert system.is_vanished_image('failed commit on ref "sha256:45": commit failed: '
                                    "lease does not exist: not found")
    assert not system.is_vanished_image("The command '/bin/sh -c false' returned 1")
