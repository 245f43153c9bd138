"""The build context of a folder as the docker CLI sends it to the classic builder.

The classic builder keys a ``COPY`` or ``ADD`` step on a hash of the tar headers of the
files it copies (mode, owner, size, ...; not their dates). The docker CLI writes its
context with the owner 0:0 and Go's file-type bits in the mode (``0100644`` for a file);
Python's ``tarfile``, and so docker-py's ``build(path=...)``, writes the file's own owner
and the permission bits alone (``0644``). Same files, other hash: a learner's
``docker build`` in the terminal would then miss the cache of labkit's build and make
another image. A context written here hashes as the CLI's does, so both share one cache.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from docker.utils.build import exclude_paths

#: The file-type bits Go's tar writer keeps in a header's mode, by tar type flag.
_TYPE_BITS = {tarfile.REGTYPE: 0o100000, tarfile.AREGTYPE: 0o100000,
              tarfile.DIRTYPE: 0o040000, tarfile.SYMTYPE: 0o120000}
_BLOCK = 512


def ignore_patterns(folder: Path) -> list[str]:
    """The patterns of ``folder/.dockerignore`` (none when it has none)."""
    try:
        lines = (folder / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def cli_context(folder: Path, dockerfile: str = "Dockerfile") -> io.BytesIO:
    """``folder`` as an uncompressed tar, written as the docker CLI writes a build context:
    ``.dockerignore`` applied (the Dockerfile and ``.dockerignore`` always go), each entry
    owned by 0:0, modes with their file-type bits."""
    root = folder.resolve()
    names = sorted(exclude_paths(str(root), ignore_patterns(root), dockerfile=dockerfile))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info: tarfile.TarInfo | None = tar.gettarinfo(str(root / name), arcname=name)
            if info is None:  # a socket: the CLI leaves it out too
                continue
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with (root / name).open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    return io.BytesIO(with_type_bits(raw.getvalue()))


def with_type_bits(data: bytes) -> bytes:
    """A tar whose file, folder and link headers carry Go's file-type bits in their mode
    (``tarfile`` keeps the permission bits only), with their checksums made right."""
    out = bytearray(data)
    offset = 0
    while offset + _BLOCK <= len(out) and any(out[offset:offset + _BLOCK]):
        header = out[offset:offset + _BLOCK]
        size = int(bytes(header[124:136]).strip(b"\0 ") or b"0", 8)
        bits = _TYPE_BITS.get(bytes(header[156:157]))
        if bits is not None:
            mode = int(bytes(header[100:108]).strip(b"\0 ") or b"0", 8) | bits
            header[100:108] = b"%07o\0" % mode
            header[148:156] = b" " * 8
            header[148:156] = b"%06o\0 " % sum(header)
            out[offset:offset + _BLOCK] = header
        offset += _BLOCK + -(-size // _BLOCK) * _BLOCK
    return bytes(out)
