"""Checksummed, atomic downloads with retries and mirror fallback, through :mod:`pooch`.

pooch streams a file to a temporary file in the destination folder, checks its hash, then moves
it under the final name, so an interrupted or corrupted download never leaves a file there; a
file already present with the right checksum is its cache and is not fetched again. Transient
failures (no connection, a timeout, HTTP 5xx) are retried :data:`RETRIES` times by pooch; a
missing file (HTTP 4xx) or a checksum mismatch is not, since the same mirror would answer the
same: :func:`download_from_mirrors` moves on to the next mirror instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 60.0
#: extra attempts after a transient failure (pooch waits 1 s, 2 s, ... between them)
RETRIES = 2


class DownloadError(Exception):
    """One download failed (network error, HTTP error or checksum mismatch): the next mirror may
    serve the file."""


def md5sum(path: str | Path) -> str:
    """Hex md5 digest of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Downloader:
    """pooch's HTTP downloader, turning what a retry cannot fix (HTTP 4xx, an md5 that does not
    match) into a :class:`DownloadError`, which pooch does not retry."""

    def __init__(self, timeout: float, md5: str | None) -> None:
        import pooch

        self.http = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
        self.md5 = md5

    def __call__(self, url: str, output_file: Any, pup: Any, check_only: bool = False) -> Any:
        import requests

        try:
            result = self.http(url, output_file, pup, check_only=check_only)
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else 0
            if 400 <= status < 500:
                raise DownloadError(f"{url}: HTTP {status} {err.response.reason}") from err
            raise
        if self.md5 is not None and (got := md5sum(output_file)) != self.md5:
            raise DownloadError(f"{url}: md5 {got} does not match the expected {self.md5}")
        return result


def _reason(err: Exception) -> str:
    """The innermost cause of a requests error, e.g. ``[Errno 111] Connection refused``."""
    cause = err.args[0] if err.args else err
    return str(getattr(cause, "reason", cause))


def download_file(url: str, dest: str | Path, md5: str | None, timeout: float = DEFAULT_TIMEOUT,
                  retries: int | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically through pooch, verifying its md5 when ``md5`` is
    given; an existing ``dest`` with that md5 is kept as it is (pooch's cache).

    Raises :class:`DownloadError` when the request fails (after ``retries`` extra attempts for a
    transient failure, default :data:`RETRIES`) or the checksum does not match; in every
    failure case nothing is left behind (no partial file, no temporary file) and an existing
    ``dest`` is untouched. A local problem (permissions, a full disk) raises :class:`OSError`.
    """
    import pooch
    import requests

    dest = Path(dest)
    md5 = md5.lower() if md5 else None
    pup = pooch.create(path=dest.parent, base_url="", registry={dest.name: md5 and f"md5:{md5}"},
                       urls={dest.name: url}, retry_if_failed=RETRIES if retries is None else retries)
    fresh = not dest.exists()
    chatty = pooch.get_logger()  # pooch's own lines ("Downloading...", "Will attempt again..."):
    level = chatty.level         # a failure is reported once, by the caller
    chatty.setLevel(logging.WARNING)
    try:
        pup.fetch(dest.name, downloader=_Downloader(timeout, md5))
    except requests.RequestException as err:  # an OSError too: tell it from a local one first
        raise DownloadError(f"{url}: {_reason(err)}") from err
    except ValueError as err:  # pooch's own checksum check (the downloader checks first)
        raise DownloadError(f"{url}: {err}") from err
    finally:
        chatty.setLevel(level)
    if fresh:
        os.chmod(dest, 0o644)  # the temporary file was 0600; a dataset cache should be readable by all
    return dest


def download_from_mirrors(filename: str, mirrors: Sequence[str], root: str | Path,
                          md5: str | None, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Fetch ``filename`` into ``root`` from the first of ``mirrors`` (base URLs) that serves it
    with the right checksum; raise GanforgeError naming every mirror tried when all fail."""
    root = Path(root)
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        log.info("downloading %s", url)
        try:
            return download_file(url, root / filename, md5, timeout=timeout)
        except OSError as err:  # local trouble (permissions, disk full): another mirror won't help
            raise GanforgeError(f"cannot write {filename} into {root}: {err}",
                                "point data.root at a writable folder with free space") from err
        except DownloadError as err:
            log.info("download failed: %s", err)  # every failure is in the one error below
            failures.append(str(err))
    tried = ", ".join(mirrors) if mirrors else "none configured"
    detail = f" ({'; '.join(failures)})" if failures else ""
    raise GanforgeError(
        f"could not download {filename} from any mirror (tried: {tried}){detail}",
        f"download {filename} manually into {root}",
    )
