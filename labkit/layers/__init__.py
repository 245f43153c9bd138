"""Layers: the files each layer adds, changes and deletes, the names of an image and its
parts (identity) and the sizes it is shown with, what two images share,
copy-on-write in a running container, each layer's life, and the analysis memo.
"""

from . import cow, sharing
from .analysis import (
    FILE_COLUMNS,
    LAYER_COLUMNS,
    ImageLayers,
    Layer,
    analyze,
    analyze_archive,
    from_raw,
    one_image,
    read_raw,
    top_layer,
)
from .identity import (
    SIZE_COLUMNS,
    Blob,
    ImageIds,
    identify,
    sizes,
)
from .life import (
    lifecycle,
    media_type_compression,
)
from .memo import (
    RawImage,
)

__all__ = [
    "Blob",
    "FILE_COLUMNS",
    "ImageIds",
    "SIZE_COLUMNS",
    "ImageLayers",
    "LAYER_COLUMNS",
    "Layer",
    "RawImage",
    "analyze",
    "analyze_archive",
    "cow",
    "from_raw",
    "identify",
    "lifecycle",
    "media_type_compression",
    "one_image",
    "read_raw",
    "sharing",
    "sizes",
    "top_layer",
]
