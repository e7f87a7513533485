import hashlib
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import mnist
from ganforge.data.download import DownloadError, download_file, download_from_mirrors, md5sum
from ganforge.errors import GanforgeError

FILES = [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]


class Server:
    def __init__(self, docroot: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(docroot)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path, write_split, monkeypatch):
    """An HTTP server with mirrors /good/ (correct files), /bad/ (same names, other bytes) and
    /empty/ (nothing); the checksum table lists the md5 of the /good/ files."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    docroot = tmp_path / "www"
    train, _ = write_split(docroot / "good", "train", n=6, seed=1)
    test, _ = write_split(docroot / "good", "t10k", n=4, seed=2)
    write_split(docroot / "bad", "train", n=5, seed=9)  # other n: the labels differ too
    write_split(docroot / "bad", "t10k", n=3, seed=9)
    (docroot / "empty").mkdir()
    md5 = {f: hashlib.md5((docroot / "good" / f).read_bytes()).hexdigest() for f in FILES}
    server = Server(docroot)
    server.md5 = md5
    server.train, server.test = train, test

    def use_mirrors(*names: str) -> None:
        mirrors = tuple(f"{server.url}/{n}/" for n in names)
        src = mnist.SOURCES["mnist"]
        monkeypatch.setitem(mnist.SOURCES, "mnist",
                            mnist.IdxSource(src.title, mirrors, md5, src.classes))

    server.use_mirrors = use_mirrors
    monkeypatch.setattr(mnist, "DOWNLOAD_TIMEOUT", 5.0)
    yield server
    server.close()


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_download_success(served, tmp_path):
    served.use_mirrors("good")
    root = tmp_path / "cache" / "mnist"
    ds = mnist.mnist(root=str(root), split="all", download=True)
    assert len(ds) == 10
    expected = np.concatenate([served.train, served.test])
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(expected).float() / 127.5 - 1)
    assert leftovers(root) == sorted(FILES)  # no temp files
    assert all(hashlib.md5((root / f).read_bytes()).hexdigest() == served.md5[f] for f in FILES)
    # a second load finds everything and makes no request
    n = len(served.requests)
    mnist.mnist(root=str(root), split="all", download=True)
    assert len(served.requests) == n


def test_checksum_mismatch_falls_through_to_next_mirror(served, tmp_path):
    served.use_mirrors("bad", "empty", "good")
    root = tmp_path / "root"
    ds = mnist.mnist(root=str(root), split="test", download=True)
    assert len(ds) == 4
    assert served.requests == [f"/{m}/t10k-{k}-ubyte.gz" for k in ("images-idx3", "labels-idx1")
                               for m in ("bad", "empty", "good")]
    assert leftovers(root) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_all_mirrors_failing(served, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    served.use_mirrors("bad", "empty")
    src = mnist.SOURCES["mnist"]
    monkeypatch.setitem(mnist.SOURCES, "mnist",
                        mnist.IdxSource(src.title, (dead, *src.mirrors), src.md5, src.classes))
    root = tmp_path / "root"
    with pytest.raises(GanforgeError) as err:
        mnist.mnist(root=str(root), split="test", download=True)
    msg = str(err.value)
    assert msg.startswith("could not download t10k-images-idx3-ubyte.gz from any mirror")
    for mirror in (dead, f"{served.url}/bad/", f"{served.url}/empty/"):
        assert mirror in msg
    assert "md5" in msg and "404" in msg
    assert f"download t10k-images-idx3-ubyte.gz manually into {root}" in msg
    assert leftovers(root) == []  # no partial or temporary file


def test_only_missing_files_are_downloaded(served, tmp_path, write_split):
    served.use_mirrors("good")
    root = tmp_path / "root"
    local_test, _ = write_split(root, "t10k", n=3, seed=5, gz=False)  # present, raw, not served
    ds = mnist.mnist(root=str(root), split="all", download=True)
    assert sorted(served.requests) == sorted(f"/good/train-{k}-ubyte.gz"
                                             for k in ("images-idx3", "labels-idx1"))
    assert len(ds) == 6 + 3
    torch.testing.assert_close(ds.x[6:, 0], torch.from_numpy(local_test).float() / 127.5 - 1)


def test_download_file_keeps_existing_dest_on_mismatch(served, tmp_path):
    dest = tmp_path / "d" / "train-labels-idx1-ubyte.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError, match="md5 .* does not match"):
        download_file(f"{served.url}/bad/train-labels-idx1-ubyte.gz", dest,
                      served.md5["train-labels-idx1-ubyte.gz"], timeout=5)
    assert dest.read_bytes() == b"old" and leftovers(dest.parent) == [dest.name]
    download_file(f"{served.url}/good/train-labels-idx1-ubyte.gz", dest,
                  served.md5["train-labels-idx1-ubyte.gz"], timeout=5)
    assert hashlib.md5(dest.read_bytes()).hexdigest() == served.md5["train-labels-idx1-ubyte.gz"]
    assert leftovers(dest.parent) == [dest.name]


def test_no_mirrors_configured(tmp_path):
    with pytest.raises(GanforgeError, match="tried: none configured.*manually into"):
        download_from_mirrors("x.gz", [], tmp_path, None)


class FlakyHandler(SimpleHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then serves the files."""

    failures = 0
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        if len(type(self).requests) <= type(self).failures:
            self.send_error(503, "busy")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("retries, ok", [(1, True), (0, False)])
def test_a_transient_failure_is_retried(tmp_path, monkeypatch, retries, ok):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "f.bin").write_bytes(b"payload")
    handler = type("Flaky", (FlakyHandler,), {"failures": 1, "requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path / "www")))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/f.bin"
    dest = tmp_path / "out" / "f.bin"
    try:
        if ok:
            download_file(url, dest, hashlib.md5(b"payload").hexdigest(), timeout=5, retries=retries)
            assert dest.read_bytes() == b"payload" and handler.requests == ["/f.bin"] * 2
            assert dest.stat().st_mode & 0o777 == 0o644
        else:
            with pytest.raises(DownloadError, match="503"):
                download_file(url, dest, None, timeout=5, retries=retries)
            assert handler.requests == ["/f.bin"] and leftovers(dest.parent) == []
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_file_with_the_right_checksum_is_not_fetched_again(served, tmp_path):
    name = "train-labels-idx1-ubyte.gz"
    dest = tmp_path / name
    download_file(f"{served.url}/good/{name}", dest, served.md5[name], timeout=5)
    n = len(served.requests)
    download_file(f"{served.url}/good/{name}", dest, served.md5[name], timeout=5)
    assert len(served.requests) == n
    dest.write_bytes(b"stale")  # a wrong checksum: fetched again
    download_file(f"{served.url}/good/{name}", dest, served.md5[name], timeout=5)
    assert len(served.requests) == n + 1 and md5sum(dest) == served.md5[name]
