"""Record a tiny ``docker image save`` archive from the engine DOCKER_HOST names.

    python tests/unit/data/record_saved_image.py NAME     # writes tests/unit/data/NAME.tar

The image is ``FROM scratch`` with two ``COPY`` layers, built by the classic builder (the
engine's /build endpoint, as labkit builds): layer 0 adds /hello.txt and /dir/a.txt,
layer 1 replaces /hello.txt and adds /dir/b.txt (sizes in FILES below). It is saved by
its tag, exactly as the engine streams it, then removed. How the stored ones were made,
each against a throwaway engine of python -m testbed.dind:

    LABKIT_ENGINE=20.10 python -m testbed.dind start                  -> saved_legacy_20.10.tar
    LABKIT_ENGINE=28.5+containerd+api1.44 python -m testbed.dind start -> saved_oci_28.5.tar

(with that engine's env file loaded, then ``python -m testbed.dind stop``). 20.10 writes the
legacy layout (manifest.json, <id>/layer.tar); 28.5 with the containerd image store the
OCI layout (index.json, blobs/sha256/...). tests/unit/test_image_archive.py reads both.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

from labkit.engine import connection as engine

#: (layer, path in the image, content): what the recorded image holds, layer by layer.
FILES = [
    (0, "hello.txt", b"hello\n"),
    (0, "dir/a.txt", b"a" * 100 + b"\n"),
    (1, "hello.txt", b"hello, world\n"),
    (1, "dir/b.txt", b"b" * 300 + b"\n"),
]
DOCKERFILE = b"""FROM scratch
COPY layer0/ /
COPY layer1/ /
CMD ["/hello.txt"]
"""
TAG = "labkit-recorded/tiny:latest"
MTIME = 1_700_000_000  # fixed, so that the layers' content does not depend on the day


def context() -> bytes:
    """The build context as a tar: the Dockerfile and one folder per layer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("Dockerfile", DOCKERFILE)] + [
                (f"layer{layer}/{path}", data) for layer, path, data in FILES]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main(name: str) -> Path:
    cli = engine.connect()
    try:
        cli.images.build(fileobj=io.BytesIO(context()), custom_context=True, tag=TAG,
                         rm=True, forcerm=True, pull=False)
        out = Path(__file__).with_name(f"{name}.tar")
        with out.open("wb") as f:
            for chunk in cli.api.get_image(TAG):
                f.write(chunk)
        cli.images.remove(TAG, force=True)
        return out
    finally:
        cli.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(main(sys.argv[1]))
