"""Images: the build (BuildKit through the docker CLI, or the classic builder) and its
result, which builder runs and why, the image list, history and tags, the classic builder's
parent chains, which images are this learner's (module ``owned``), a saved image read as it
streams, and one file from an image.
"""

from . import owned
from .archive import (
    archive_ids,
    chain_ids,
    instruction_of,
    read_archive,
    read_layer_tar,
    resolve_image,
)
from .archive_stream import (
    BUFSIZE,
    ByteStream,
    ImageArchiveError,
    iter_tar,
)
from .build_cache import (
    parent_chain,
    remove_replaced,
)
from .build_stream import (
    TAIL_LINES,
    BuildEvent,
    BuildStep,
    BuildStreamParser,
    EventKind,
    clean_line,
    parse_error_to_build_failed,
)
from .builder import (
    BuildResult,
    base_images,
    build,
    build_command,
    get_image,
    image_exists,
    image_name,
    require_image,
    stage_text,
    tag,
)
from .builder_choice import (
    BuilderChoice,
    BuilderName,
    decide,
    forget_builder,
    probe,
    which_builder,
)
from .buildkit_stream import (
    PlainParser,
    RawJsonParser,
    attach_layers,
)
from .history_table import (
    clean_created_by,
    history,
    history_command,
    history_frame,
)
from .listing import (
    COURSE_BASE_IMAGES,
    images_frame,
    list_images,
    list_images_command,
)
from .one_file import (
    read_file,
)

__all__ = [
    "BUFSIZE",
    "BuildEvent",
    "BuildResult",
    "BuildStep",
    "BuildStreamParser",
    "BuilderChoice",
    "BuilderName",
    "PlainParser",
    "RawJsonParser",
    "ByteStream",
    "COURSE_BASE_IMAGES",
    "EventKind",
    "ImageArchiveError",
    "TAIL_LINES",
    "archive_ids",
    "attach_layers",
    "base_images",
    "build",
    "build_command",
    "chain_ids",
    "clean_created_by",
    "clean_line",
    "decide",
    "forget_builder",
    "get_image",
    "history",
    "history_command",
    "history_frame",
    "image_exists",
    "image_name",
    "images_frame",
    "instruction_of",
    "iter_tar",
    "list_images",
    "list_images_command",
    "owned",
    "parent_chain",
    "parse_error_to_build_failed",
    "probe",
    "read_archive",
    "read_file",
    "read_layer_tar",
    "remove_replaced",
    "require_image",
    "resolve_image",
    "stage_text",
    "tag",
    "which_builder",
]
