"""Behind nginx, the proxy moves a download's bytes: ``X-Accel-Redirect``.

The gateway decides, counts and logs a download exactly as without a proxy;
only then, with ``accel_redirect`` set, it answers with an empty response
whose ``X-Accel-Redirect`` names an ``internal`` location of nginx, and nginx
sends the bytes (sendfile from the blob folder, or a fetch from S3). Python
never copies them. The configuration is ``docker/nginx/carebridge.conf.template``.

- **Folder blobs**: ``<prefix>blobs/<key>``. The key is the document's stored
  blob key, parsed by the blob store (no ``..``, nothing to escape), never a
  part of the request; the store has just checked that the file is there and
  no symlink is on its path. nginx maps the location onto ``<data_dir>/blobs/``.
- **S3 blobs**: ``<prefix>s3/<path>?<query>`` of a presigned GET of that one
  object, valid ``accel_presign_seconds``; nginx proxies it to the S3
  endpoint. Not a redirect to S3: the signed URL is a bearer capability for
  its lifetime, so a client holding it could fetch again with no decision, no
  count and no log entry; the bucket also stays private, and the web app
  stays same-origin under its ``connect-src 'self'``.

A conditional request (``If-None-Match``, ``If-Match``, ``If-Modified-Since``,
``If-Unmodified-Since``) is not handed off (:func:`handed_off`): nginx's
static files would answer it 304 or 412 after the download was counted, so
the gateway sends those few itself, whole, as it does without a proxy.

The headers the client must see are the gateway's: nginx keeps
``Content-Type``, ``Content-Disposition`` and ``Cache-Control`` of an
``X-Accel-Redirect`` answer and the configuration copies the rest from it
(folder) or has S3 answer with them (S3, signed response overrides). nginx
honours no ``Range`` or conditional header there (``max_ranges 0``,
``if_modified_since off``): a counted download delivers the whole file.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from carebridge.storage.blobs.base import Blob

ACCEL_HEADER = "X-Accel-Redirect"
CONDITIONAL = ("If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since")


def handed_off(request: web.Request, prefix: str) -> bool:
    """Whether this download's bytes go to the proxy: a prefix is set and nothing is conditional."""
    return bool(prefix) and not any(name in request.headers for name in CONDITIONAL)


def accel_response(blob: Blob, headers: dict[str, str], *, prefix: str, presign_seconds: int) -> web.Response:
    """The empty answer that has nginx send *blob* with *headers*.

    Raises ``StorageError`` if a presigned URL cannot be made (the problem
    middleware answers 503), ``NotImplementedError`` for a store that has no
    path nginx can reach.
    """
    if blob.local_path is not None:
        target = f"{prefix}blobs/{blob.key}"
    else:
        presign = getattr(blob, "presigned_get", None)
        if presign is None:
            raise NotImplementedError(f"{type(blob).__name__} cannot be handed to the proxy")
        url = urlsplit(presign(presign_seconds, response_headers={
            "ResponseContentType": headers["Content-Type"],
            "ResponseContentDisposition": headers["Content-Disposition"],
            "ResponseCacheControl": "no-store"}))
        target = f"{prefix}s3{url.path}?{url.query}"
    # No body: nginx sends the file's own length. The ETag is the gateway's, copied by nginx.
    return web.Response(status=200, headers={**headers, ACCEL_HEADER: target})
