"""Reader (and writer) for the IDX format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the payload: ``prod(dims)`` big-endian values of the dtype, row-major.
Image files are uint8 with 3 dims (magic 2051 = 0x00000803), label files uint8 with 1 dim
(magic 2049 = 0x00000801). Files may be gzip-compressed; that is detected from the gzip magic
bytes, not the file name.

Every malformed file raises :class:`~ganforge.errors.GanforgeError` naming the file and telling
the user to delete it and download it again.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}


def _corrupt(path: Path, problem: str) -> GanforgeError:
    return GanforgeError(f"{path}: {problem}", f"delete {path} and download it again")


def read_bytes(path: str | Path) -> bytes:
    """The decompressed content of ``path`` (gunzipped when it starts with the gzip magic)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise GanforgeError(f"cannot read {path}: {err.strerror or err}",
                            "check the file exists and is readable") from err
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise _corrupt(path, f"corrupt or truncated gzip data ({err})") from err
    return data


def parse_idx(data: bytes, path: str | Path = "<bytes>",
              expect_magic: int | None = None) -> np.ndarray:
    """Parse decompressed IDX bytes into a native-endian array of the stored dtype and dims.

    ``expect_magic`` (e.g. :data:`IMAGES_MAGIC`) also checks the dtype and number of dims.
    """
    path = Path(path)
    if len(data) < 4:
        raise _corrupt(path, f"only {len(data)} bytes, too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise _corrupt(path, f"not an IDX file (magic number {magic:#010x})")
    if expect_magic is not None and magic != expect_magic:
        raise _corrupt(path, f"IDX magic number {magic} ({ndim} dims), expected {expect_magic} "
                             f"({expect_magic & 0xFF} dims)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(path, f"truncated header: {ndim} dims need {header} bytes, "
                             f"file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - header
    shape = "x".join(map(str, dims))
    if actual < expected:
        raise _corrupt(path, f"truncated: the header says {shape} ({expected:,} payload bytes) but "
                             f"only {actual:,} follow")
    if actual > expected:
        raise _corrupt(path, f"{actual - expected:,} unexpected bytes after the {shape} payload")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array, validating it fully."""
    return parse_idx(read_bytes(path), path, expect_magic)


def read_idx_images(path: str | Path) -> np.ndarray:
    """uint8 (N, H, W) images from an IDX image file (magic 2051)."""
    return read_idx(path, IMAGES_MAGIC)


def read_idx_labels(path: str | Path) -> np.ndarray:
    """uint8 (N,) labels from an IDX label file (magic 2049)."""
    return read_idx(path, LABELS_MAGIC)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("=")
    if dtype not in _CODES or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX cannot store a {array.ndim}-dim {array.dtype} array")
    big = IDX_DTYPES[_CODES[dtype]]
    data = (struct.pack(">HBB", 0, _CODES[dtype], array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array, dtype=big).tobytes())
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
