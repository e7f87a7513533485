"""Checksummed, atomic downloads with mirror fallback, using only the standard library.

A file is streamed to a hidden temporary file in the destination directory, its md5 checked, then
fsynced and atomically renamed into place, so an interrupted or corrupted download never leaves a
file under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ganforge.errors import GanforgeError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 60.0


class DownloadError(Exception):
    """One download attempt failed (network error, HTTP error or checksum mismatch)."""


def md5sum(path: str | Path) -> str:
    """Hex md5 digest of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def download_file(url: str, dest: str | Path, md5: str | None,
                  timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its md5 when ``md5`` is given.

    Raises :class:`DownloadError` when the request fails or the checksum does not match; in
    every failure case nothing is left behind (no partial file, no temporary file) and an
    existing ``dest`` is untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                # A fresh opener per call picks up the current proxy environment.
                response = urllib.request.build_opener().open(url, timeout=timeout)
            except urllib.error.HTTPError as err:
                err.close()
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            except (OSError, ValueError, http.client.HTTPException) as err:
                raise DownloadError(f"{url}: {getattr(err, 'reason', None) or err}") from err
            with response:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as err:
                        raise DownloadError(f"{url}: transfer interrupted ({err!r})") from err
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise DownloadError(
                f"{url}: md5 {digest.hexdigest()} does not match the expected {md5}")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a dataset cache should be readable by all
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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
            log.warning("download failed: %s", err)
            failures.append(str(err))
    tried = ", ".join(mirrors) if mirrors else "none configured"
    detail = f" ({'; '.join(failures)})" if failures else ""
    raise GanforgeError(
        f"could not download {filename} from any mirror (tried: {tried}){detail}",
        f"download {filename} manually into {root}",
    )

