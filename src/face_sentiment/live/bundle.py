"""The live page's built files (`live/web/`, made by `make web`), read once into memory.

`load_bundle()` maps each URL path to its bytes, content type, ETag and gzipped bytes; the
server answers page requests from that table only, so no request path reaches the file system.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

WEB_DIR = Path(__file__).resolve().with_name("web")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
                 ".txt": "text/plain; charset=utf-8", ".woff2": "font/woff2"}
# Served for / when the bundle is missing (an installation without `make web`).
MISSING_BUNDLE = (b"<!doctype html><meta charset=utf-8><title>face sentiment live</title>"
                  b"<p>The live page's bundle is missing from this installation "
                  b"(face_sentiment/live/web/). Build it with <code>make web</code>. The "
                  b"stream is at <a href=/stream.mjpg>/stream.mjpg</a>, the records at "
                  b"<a href=/api/frames>/api/frames</a>.")


def load_bundle(folder: Path = WEB_DIR) -> dict[str, tuple[bytes, str, str, bytes | None]]:
    """URL path -> (content, content type, ETag, gzipped content or None) of every regular file
    of the bundle.

    Dot files, symbolic links and unknown file types are left out. Read once at start: a
    request path is only ever looked up in this table.
    """
    table: dict[str, tuple[bytes, str, str, bytes | None]] = {}
    if not folder.is_dir():
        return table
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (path.is_symlink() or not path.is_file()
                or any(part.startswith(".") for part in relative.parts)):
            continue
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            continue
        content = path.read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:20] + '"'
        packed = gzip.compress(content, 9, mtime=0) if len(content) > 1024 else None
        table["/" + relative.as_posix()] = (content, content_type, etag, packed)
    return table
