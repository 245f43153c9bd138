"""Learners: who a learner can be (the name rule) and their recorded exercise results.

Standard library only: the classroom's hub loads ``records.py`` by its path.
"""

from .records import (
    ENV,
    EXERCISES,
    FILE_NAME,
    LEARNER_NAME,
    MAX_BYTES,
    MAX_FAILED,
    MAX_LINES,
    MAX_TEXT,
    TIME_FORMAT,
    TIME_SHAPE,
    Learner,
    LearnerFile,
    is_learner_name,
    learners,
    order,
    parse,
    read,
    read_all,
    read_learner,
    record,
    summary,
    valid_line,
)

__all__ = [
    "ENV",
    "EXERCISES",
    "FILE_NAME",
    "LEARNER_NAME",
    "Learner",
    "LearnerFile",
    "MAX_BYTES",
    "MAX_FAILED",
    "MAX_LINES",
    "MAX_TEXT",
    "TIME_FORMAT",
    "TIME_SHAPE",
    "is_learner_name",
    "learners",
    "order",
    "parse",
    "read",
    "read_all",
    "read_learner",
    "record",
    "summary",
    "valid_line",
]
