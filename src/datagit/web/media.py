"""Example bytes and thumbnails, served by content address.

The URL names a content address (32 hex digits), never a path, so nothing
outside the content store can be reached through it. Bytes go out as the
image type their signature shows, as plain text, or as an attachment —
never as HTML, whatever they contain. Thumbnails are made with Pillow once
per (address, size) and kept in memory: an address names its bytes forever.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datagit.api import browse
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.web.app import Viewer

SIZES = (64, 128, 256)
IMMUTABLE = "public, max-age=31536000, immutable"
# (signature at offset 0, MIME type): the formats a browser shows as an image
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def sniff(data: bytes) -> str | None:
    """The image type the bytes' signature shows, or None."""
    for magic, mime in SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Thumbnails:
    """PNG thumbnails by (content address, size), least recently used dropped first."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, address: str, size: int, read: bytes | None = None) -> bytes | None:
        key = (address, size)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if read is None:
            return None
        png = make_thumbnail(read, size)
        self._cache[key] = png
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return png


def make_thumbnail(data: bytes, size: int) -> bytes:
    """Fit the image in ``size``×``size``; tiny images (8×8 digits) grow by whole pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            im = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError("no preview: the example's bytes are not an image") from exc
    w, h = im.size
    if max(w, h) * 2 <= size:
        k = size // max(w, h)
        im = im.resize((w * k, h * k), Image.Resampling.NEAREST)
    else:
        im.thumbnail((size, size))
    out = io.BytesIO()
    im.save(out, format="PNG", optimize=False, compress_level=1)
    return out.getvalue()


def routes(viewer: Viewer) -> list[Route]:
    thumbs = Thumbnails()

    def read(address: str) -> bytes:
        try:
            return browse.content(viewer.repo, address)
        except DatagitError:
            # a commit made since the viewer started may have added it: look again once
            return browse.content(viewer.reopen(), address)

    async def thumbnail(request: Request) -> Response:
        address = request.path_params["address"]
        try:
            size = int(request.query_params.get("size", "128"))
        except ValueError:
            size = 0
        if size not in SIZES:
            raise InvalidInputError(f"thumbnail size {size}", hint=f"one of {SIZES}")
        png = thumbs.get(address, size)
        if png is None:
            data = read(address)
            if sniff(data) is None:
                raise InvalidInputError(f"no preview: content {address} is not an image")
            png = thumbs.get(address, size, data)
        assert png is not None
        return Response(png, media_type="image/png", headers={"cache-control": IMMUTABLE})

    async def raw(request: Request) -> Response:
        address = request.path_params["address"]
        data = read(address)
        mime = sniff(data)
        headers = {"cache-control": IMMUTABLE}
        if mime is None:
            if request.query_params.get("as") == "text":
                mime = "text/plain; charset=utf-8"
            else:
                mime = "application/octet-stream"
                headers["content-disposition"] = f'attachment; filename="{address}"'
        return Response(data, media_type=mime, headers=headers)

    return [
        Route("/thumb/{address}", thumbnail),
        Route("/content/{address}", raw),
    ]
