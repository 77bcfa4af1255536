#!/usr/bin/env python3
"""Serve the local registry's blob files over HTTP, with Range support, on loopback.

Why it exists: Ollama downloads a model layer by asking the registry for the blob
and expects a *307 redirect* to somewhere else (ollama.com redirects to its CDN),
then fetches that location in several parallel ``Range: bytes=a-b`` requests.
The Debian registry (distribution 2.8) can answer blob reads with such a redirect
through its ``redirect`` storage middleware; this server is the place the redirect
points at.  It serves the registry's storage root directory read-only: the redirect
URL is ``<baseurl>/docker/registry/v2/blobs/sha256/xx/<digest>/data``.

Only GET and HEAD; a single byte range per request (all Ollama asks for).
Binds 127.0.0.1 only.

usage: blob_server.py ROOT_DIR PORT
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK = 1 << 20


class BlobHandler(BaseHTTPRequestHandler):
    root = "."  # set in main()
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _resolve(self) -> str | None:
        """Map the URL path to a regular file below root, or None."""
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        full = os.path.realpath(os.path.join(self.root, rel))
        if os.path.commonpath([full, self.root]) != self.root or not os.path.isfile(full):
            return None
        return full

    def _serve(self, send_body: bool) -> None:
        path = self._resolve()
        if path is None:
            self._reply_empty(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        status = 200

        header = self.headers.get("Range", "").strip()
        m = RANGE_RE.fullmatch(header) if header else None
        if m and (m.group(1) or m.group(2)):
            if m.group(1):  # bytes=a- or bytes=a-b
                start = int(m.group(1))
                if m.group(2):
                    end = min(int(m.group(2)), size - 1)
            else:  # bytes=-n: the last n bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                self._reply_empty(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206

        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not send_body or length == 0:
            return
        with open(path, "rb") as f:
            f.seek(start)
            remaining = length
            while remaining > 0:
                buf = f.read(min(CHUNK, remaining))
                if not buf:
                    break
                self.wfile.write(buf)
                remaining -= len(buf)

    def _reply_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    root, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(root, exist_ok=True)
    BlobHandler.root = os.path.realpath(root)
    server = ThreadingHTTPServer(("127.0.0.1", port), BlobHandler)
    server.daemon_threads = True
    print(f"blob server: {BlobHandler.root} on http://127.0.0.1:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
