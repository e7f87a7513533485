"""MOSES' files downloaded on request (``data.download=true``): the molsets wheel fetched from a
local HTTP server, its members checked and extracted; a wrong checksum or a missing file leaves
nothing behind."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile

import pytest
from tests.data.test_download import Server

from ganforge.data.moses_files import MEMBER_FOLDER, MOSES_FILES, download_moses
from ganforge.errors import GanforgeError

SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC1CCCCC1"]


def _gz(rows: list[str]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as fh:
        fh.write(("SMILES\n" + "\n".join(rows) + "\n").encode())
    return buffer.getvalue()


@pytest.fixture
def wheel(tmp_path, monkeypatch):
    """A stand-in molsets wheel served on 127.0.0.1 and the md5 of it and of its members."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    members = {
        "train.csv.gz": _gz(SMILES),
        "test.csv.gz": _gz(SMILES[:3]),
        "test_scaffolds.csv.gz": _gz(SMILES[3:]),
    }
    docroot = tmp_path / "www"
    docroot.mkdir()
    with zipfile.ZipFile(docroot / "molsets.whl", "w") as archive:
        for name, data in members.items():
            archive.writestr(MEMBER_FOLDER + name, data)
        archive.writestr("moses/__init__.py", "")
    server = Server(docroot)
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in members.items()}
    yield server, hashlib.md5((docroot / "molsets.whl").read_bytes()).hexdigest(), md5, members
    server.close()


def test_the_files_come_out_of_the_wheel_checked(wheel, tmp_path):
    server, wheel_md5, md5, members = wheel
    root = tmp_path / "moses"
    paths = download_moses(root, f"{server.url}/molsets.whl", wheel_md5, md5)
    assert {p.name: p.read_bytes() for p in paths} == members
    assert sorted(p.name for p in root.iterdir()) == sorted(members)  # no wheel, no temporary left
    download_moses(root, f"{server.url}/molsets.whl", wheel_md5, md5)  # all there: nothing fetched
    assert server.requests == ["/molsets.whl"]


def test_a_bad_wheel_checksum_or_url_leaves_nothing(wheel, tmp_path):
    server, wheel_md5, md5, _ = wheel
    root = tmp_path / "moses"
    with pytest.raises(GanforgeError, match="could not download MOSES' files"):
        download_moses(root, f"{server.url}/molsets.whl", "0" * 32, md5)
    with pytest.raises(GanforgeError, match="could not download MOSES' files"):
        download_moses(root, f"{server.url}/missing.whl", wheel_md5, md5)
    assert not root.exists()


def test_a_member_with_another_checksum_is_refused(wheel, tmp_path):
    server, wheel_md5, md5, _ = wheel
    root = tmp_path / "moses"
    with pytest.raises(GanforgeError, match="MOSES file test.csv.gz in the wheel has md5"):
        download_moses(root, f"{server.url}/molsets.whl", wheel_md5, {**md5, "test.csv.gz": "f" * 32})
    assert not root.exists()


def test_the_shipped_checksums_are_the_shared_copys(tmp_path):
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "molecules"
    if not (shared / "train.csv.gz").exists():
        pytest.skip("MOSES data not found beside the repo")
    assert {
        name: hashlib.md5((shared / name).read_bytes()).hexdigest() for name in MOSES_FILES
    } == MOSES_FILES


def test_the_moses_dataset_downloads_what_is_missing(wheel, tmp_path, monkeypatch):
    from functools import partial

    from ganforge.data import build_dataset
    from ganforge.data import molecules as molecules_module

    pytest.importorskip("rdkit")
    server, wheel_md5, md5, _ = wheel
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    fetch = partial(download_moses, url=f"{server.url}/molsets.whl", wheel_md5=wheel_md5, files=md5)
    monkeypatch.setattr(molecules_module, "download_moses", fetch)
    section = {"name": "moses", "root": str(tmp_path / "moses"), "size": 4, "reference_size": 2}
    with pytest.raises(GanforgeError, match="data.download=true"):
        build_dataset(section)
    data = build_dataset({**section, "download": True})
    assert len(data) == 4 and len(data.test_smiles) == 2 and server.requests == ["/molsets.whl"]
