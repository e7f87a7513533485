import gzip
import struct

import numpy as np
import pytest

from ganforge.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
)
from ganforge.errors import GanforgeError


def idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.parametrize("gz", [False, True])
def test_reads_handmade_file(tmp_path, gz):
    raw = idx_bytes(0x08, (2, 3, 4), bytes(range(24)))
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    arr = read_idx_images(path)
    assert arr.dtype == np.uint8 and arr.shape == (2, 3, 4)
    assert arr[1, 2, 3] == 23 and arr[0, 1, 0] == 4  # row-major
    assert arr.flags.writeable


def test_compression_is_detected_from_content_not_name(tmp_path):
    raw = idx_bytes(0x08, (3,), b"\x01\x02\x03")
    (tmp_path / "plain.gz").write_bytes(raw)
    (tmp_path / "packed").write_bytes(gzip.compress(raw))
    assert read_idx_labels(tmp_path / "plain.gz").tolist() == [1, 2, 3]
    assert read_idx_labels(tmp_path / "packed").tolist() == [1, 2, 3]


def test_big_endian_multibyte_values(tmp_path):
    raw = idx_bytes(0x0C, (2,), struct.pack(">2i", 1, -70000))
    (tmp_path / "i4").write_bytes(raw)
    arr = read_idx(tmp_path / "i4")
    assert arr.dtype == np.int32 and arr.tolist() == [1, -70000]


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("array", [
    np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
    np.array([-3, 0, 7], dtype=np.int16),
    np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
    np.array([1.5, -2.25], dtype=np.float64),
])
def test_write_read_round_trip(tmp_path, name, array):
    write_idx(tmp_path / name, array)
    is_gz = (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"
    assert is_gz == name.endswith(".gz")
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_wrong_magic_is_reported_with_the_fix(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(GanforgeError, match=r"not an IDX file.*delete .*train-images-idx3-ubyte "
                                            r"and download it again"):
        read_idx(path)


def test_labels_file_where_images_expected(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(0x08, (3,), b"\x00\x01\x02"))
    with pytest.raises(GanforgeError, match=f"number {LABELS_MAGIC}.*expected {IMAGES_MAGIC}"):
        read_idx_images(path)
    assert read_idx(path, expect_magic=LABELS_MAGIC).shape == (3,)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path, gz):
    raw = idx_bytes(0x08, (10, 28, 28), bytes(10 * 28 * 28 - 1))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(GanforgeError) as err:
        read_idx_images(path)
    msg = str(err.value)
    assert "truncated" in msg and "10x28x28" in msg and "7,839" in msg
    assert str(path) in msg and "download it again" in msg
    assert "\n" not in msg


def test_oversized_payload(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(0x08, (2, 2, 2), bytes(8 + 5)))
    with pytest.raises(GanforgeError, match=r"5 unexpected bytes after the 2x2x2 payload.*delete"):
        read_idx_images(path)


def test_dims_that_do_not_match_the_payload(tmp_path):
    # header claims 4x4x4 = 64 bytes but only 16 follow
    path = tmp_path / "dims"
    path.write_bytes(idx_bytes(0x08, (4, 4, 4), bytes(16)))
    with pytest.raises(GanforgeError, match="4x4x4 .64 payload bytes. but only 16 follow"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "hdr"
    path.write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">I", 10))  # 1 of 3 dims
    with pytest.raises(GanforgeError, match="truncated header: 3 dims need 16 bytes"):
        read_idx(path)
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(GanforgeError, match="too short"):
        read_idx(tmp_path / "tiny")


def test_corrupt_gzip_stream(tmp_path):
    packed = gzip.compress(idx_bytes(0x08, (100,), bytes(100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(GanforgeError, match="corrupt or truncated gzip.*download it again"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(GanforgeError, match="cannot read .*nope"):
        read_idx(tmp_path / "nope")
