"""A tar stream read as it passes by (``docker image save`` and the layer tars in it): one
header at a time, data skipped without copying, and every byte a header announces checked
for, so that a truncated or damaged archive is refused instead of read in part.
"""

from __future__ import annotations

import bz2
import lzma
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeGuard

from labkit.engine import LabkitError

BUFSIZE = 1 << 20


class ImageArchiveError(LabkitError):
    """A saved image archive could not be read as Docker or OCI layout."""


class LayerUnreadable(ImageArchiveError):
    """One member's content is not a readable layer; the archive around it still is."""


_AGAIN = "Save the image again with `docker image save IMAGE -o FILE`"
_TRUNCATED_HINT = f"{_AGAIN}: the archive was cut short (a full disk, a stopped engine?)."
CORRUPT_HINT = f"{_AGAIN}: this archive is damaged."


# ---------------------------------------------------------------- reading the stream


class ByteStream:
    """Sequential reads over an iterator of byte chunks; skipping data copies nothing.

    ``layer`` marks the decompressed stream of one layer: its early end damages that
    layer, while the early end of the archive's own stream means a truncated archive.
    """

    def __init__(self, chunks: Iterable[bytes], layer: bool = False) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._view = memoryview(b"")
        self.position = 0
        self.layer = layer

    def _fill(self) -> bool:
        while not len(self._view):
            try:
                self._view = memoryview(next(self._it))
            except StopIteration:
                return False
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        if size is None or size < 0:
            size = 1 << 62
        parts = []
        while size > 0 and self._fill():
            part = self._view[:size]
            self._view = self._view[len(part):]
            parts.append(part)
            size -= len(part)
            self.position += len(part)
        return b"".join(parts)

    def skip(self, size: int) -> int:
        """Drop ``size`` bytes (fewer only at the end of the stream); how many went."""
        done = 0
        while done < size and self._fill():
            n = min(size - done, len(self._view))
            self._view = self._view[n:]
            done += n
            self.position += n
        return done

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes, left in the stream."""
        while len(self._view) < size:
            try:
                more = next(self._it)
            except StopIteration:
                break
            self._view = memoryview(bytes(self._view) + more)
        return bytes(self._view[:size])


class Member:
    """The data of one tar member, read or skipped from the underlying stream.

    Every byte its header announced must come: a stream that ends first is a truncated
    archive, or a damaged layer when the member is inside a layer.
    """

    def __init__(self, stream: ByteStream | Member, size: int, name: str = "") -> None:
        self._stream = stream
        self.left = size
        self.name = name

    def read(self, size: int = -1) -> bytes:
        n = self.left if size is None or size < 0 else min(size, self.left)
        data = self._stream.read(n)
        self.left -= len(data)
        if len(data) < n:
            raise _short(self._stream, f"the data of {self.name!r}")
        return data

    def skip(self, size: int) -> int:
        n = min(size, self.left)
        done = self._stream.skip(n)
        self.left -= done
        if done < n:
            raise _short(self._stream, f"the data of {self.name!r}")
        return done

    def peek(self, size: int) -> bytes:
        return self._stream.peek(min(size, self.left))


Stream = ByteStream | Member


def _outer(stream: Stream) -> TypeGuard[ByteStream]:
    """True for the archive's own stream (not a layer inside it)."""
    return isinstance(stream, ByteStream) and not stream.layer


def _short(stream: Stream, what: str) -> ImageArchiveError:
    """The error for a stream that ended inside ``what``."""
    if _outer(stream):
        return ImageArchiveError(
            f"The saved image ends early: {what} is cut off at byte {stream.position}.",
            _TRUNCATED_HINT)
    return LayerUnreadable(f"A layer of the saved image is damaged: {what} runs past "
                            "the end of the layer.", CORRUPT_HINT)


def _damaged(stream: Stream, what: str) -> ImageArchiveError:
    if _outer(stream):
        return ImageArchiveError(
            f"The saved image is damaged: {what} at byte {stream.position}.", CORRUPT_HINT)
    return LayerUnreadable(f"A layer of the saved image is damaged: {what}.", CORRUPT_HINT)


def _read(stream: Stream, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise _short(stream, what)
    return data


def _drop(stream: Stream, size: int, what: str) -> None:
    if stream.skip(size) < size:
        raise _short(stream, what)


def _pax(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        if length <= space - pos:
            raise ValueError(f"bad PAX record length {length}")
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _header(stream: Stream) -> tarfile.TarInfo | None:
    """The next header block, or None at the end of the tar.

    The archive's own stream must end with the end-of-archive block (``docker image
    save`` always writes it), so an archive cut between two members is refused too; a
    layer may end with its data.
    """
    block = stream.read(tarfile.BLOCKSIZE)
    if not block and not _outer(stream):
        return None
    if len(block) < tarfile.BLOCKSIZE:
        raise _short(stream, "a tar header" if block else "the end-of-archive block")
    if block == tarfile.NUL * tarfile.BLOCKSIZE:
        return None
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise _damaged(stream, f"a tar header does not parse ({exc})") from None


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def iter_tar(stream: Stream) -> Iterator[tuple[tarfile.TarInfo, Member]]:
    """Members of an uncompressed tar stream with their data; unread data is skipped.

    Handles ustar, GNU long names and PAX headers; only headers are ever kept. A stream
    that ends early or holds a header that does not parse raises ImageArchiveError.
    """
    extra: dict[str, str] = {}
    while (info := _header(stream)) is not None:
        padded = _padded(info.size)
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            value = _read(stream, padded, "a long name")[:info.size].rstrip(b"\0").decode(
                "utf-8", "surrogateescape")
            extra["path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"] = value
            continue
        if info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
            try:
                extra.update(_pax(_read(stream, padded, "a PAX header")[:info.size]))
            except (ValueError, UnicodeDecodeError) as exc:
                raise _damaged(stream, f"a PAX header does not parse ({exc})") from None
            continue
        if info.type == tarfile.XGLTYPE:
            _drop(stream, padded, "a PAX global header")
            continue
        if "path" in extra:
            info.name = extra["path"]
        if "linkpath" in extra:
            info.linkname = extra["linkpath"]
        if "size" in extra:
            if not extra["size"].isdigit():
                raise _damaged(stream, f"a PAX size {extra['size']!r} is not a number")
            info.size = int(extra["size"])
            padded = _padded(info.size)
        extra = {}
        data_size = info.size if info.type not in (tarfile.LNKTYPE, tarfile.SYMTYPE,
                                                   tarfile.DIRTYPE) else 0
        member = Member(stream, data_size, info.name)
        yield info, member
        member.skip(member.left)
        _drop(stream, padded - data_size if data_size else padded,
              f"the padding of {info.name!r}")


_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def compression(head: bytes) -> str | None:
    """gzip, bzip2, xz or zstd when ``head`` starts a compressed stream, else None."""
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    try:  # Python 3.14+
        from compression.zstd import ZstdDecompressor  # type: ignore[import-not-found]
    except ImportError:
        raise LayerUnreadable(
            "A layer of the saved image is compressed with zstd, which this Python cannot "
            "read.", "Rebuild or pull the image with gzip layers (Docker's default), or use "
            "Python 3.14 or newer.") from None
    return ZstdDecompressor()


def inflate(data: Stream, kind: str) -> Iterator[bytes]:
    """The decompressed bytes of a compressed layer, at most ``BUFSIZE`` at a time."""
    d = _decompressor(kind)
    try:
        while not d.eof:
            chunk = data.read(BUFSIZE)
            if not chunk:
                raise _damaged(data, f"its {kind} data ends early")
            while True:
                out = d.decompress(chunk, BUFSIZE)
                if out:
                    yield out
                chunk = getattr(d, "unconsumed_tail", b"")
                if d.eof or (not chunk and len(out) < BUFSIZE
                             and getattr(d, "needs_input", True)):
                    break
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise _damaged(data, f"its {kind} data does not decompress ({exc})") from None
