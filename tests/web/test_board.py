"""``ganforge board``: the JSON API over real (briefly trained) run directories, confinement of
every path to RUNS_DIR and to the run, damaged files, and that nothing is ever written."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette")
pytest.importorskip("starlette.testclient")  # needs httpx2 (the test extra) or httpx

from starlette.testclient import TestClient  # noqa: E402

from ganforge.web import board  # noqa: E402
from ganforge.web.server import STATIC  # noqa: E402

QUICK = {"train.steps": 20, "train.log_every": 5, "train.sample_every": 10, "train.checkpoint_every": 10,
         "train.batch_size": 64, "train.num_fixed_samples": 64,
         "model.g_hidden": [16], "model.d_hidden": [16]}


def _train(run_dir: Path, evaluate: bool = False) -> None:
    from ganforge.config import load_config
    from ganforge.train import Trainer
    from ganforge.train.eval_callback import EvalCallback

    overrides = dict(QUICK, **({"eval.every": 10, "eval.num_samples": 100} if evaluate else {}))
    cfg = load_config("ring8-mlp", overrides=overrides)
    callbacks = [EvalCallback.from_config(cfg.eval, cfg.data, cfg.seed)] if evaluate else []
    Trainer(cfg, run_dir, progress=False, callbacks=callbacks).fit()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """RUNS_DIR with: ``a`` (trained, with evaluation), ``sweep/b`` (trained, nested, with an
    eval.json), ``damaged`` (bad metrics.csv), ``badconfig``, ``binary`` (metrics not UTF-8),
    folders that are not runs, a run too deep, a hidden run, and links pointing out; plus
    ``secret.txt`` and a run ``outside`` beside RUNS_DIR."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("board")
    runs = base / "runs"
    try:
        _train(runs / "a", evaluate=True)
        _train(runs / "sweep" / "b")
    finally:
        torch.set_num_threads(before)
    (runs / "sweep" / "b" / "eval.json").write_text(json.dumps(
        {"metrics": {"fid_raw": 1.25, "kid_raw": float("nan")}, "baseline": {"fid_raw": 0.1}, "step": 20}))
    config = (runs / "a" / "config.yaml").read_text()

    damaged = runs / "damaged"
    damaged.mkdir()
    (damaged / "config.yaml").write_text(config)
    (damaged / "metrics.csv").write_text("step,epoch,loss_D,loss_G\n5,0,1.5,0.7\n10,0,abc,0.8\n15,0,1.")
    (runs / "badconfig").mkdir()
    (runs / "badconfig" / "config.yaml").write_text("data: [unclosed\n  model: {")
    (runs / "binary").mkdir()
    (runs / "binary" / "config.yaml").write_text(config)
    (runs / "binary" / "metrics.csv").write_bytes(b"step,loss\n\xff\xfe\x00\x81,2\n")

    (runs / "notarun" / "logs").mkdir(parents=True)
    (runs / "notarun" / "readme.txt").write_text("not a run")
    (runs / "deep" / "x" / "y" / "z").mkdir(parents=True)
    (runs / "deep" / "x" / "y" / "z" / "config.yaml").write_text(config)   # depth 4: too deep
    (runs / ".hidden").mkdir()
    (runs / ".hidden" / "config.yaml").write_text(config)

    secret = base / "secret.txt"
    secret.write_text("TOP SECRET")
    outside = base / "outside"
    outside.mkdir()
    (outside / "config.yaml").write_text(config)
    (runs / "link").symlink_to(outside, target_is_directory=True)
    (runs / "a" / "samples" / "leak.png").symlink_to(secret)
    (runs / "loop").symlink_to(runs, target_is_directory=True)
    return {"base": base, "runs": runs, "secret": secret, "outside": outside}


@pytest.fixture(scope="module")
def client(world) -> TestClient:
    return TestClient(board.create_board_app(world["runs"]))


def _runs(client: TestClient) -> dict[str, dict]:
    response = client.get("/api/runs")
    assert response.status_code == 200
    return {r["id"]: r for r in response.json()["runs"]}


def test_listing_finds_nested_runs_and_ignores_the_rest(client):
    runs = _runs(client)
    assert set(runs) == {"a", "sweep/b", "damaged", "badconfig", "binary"}
    a = runs["a"]
    assert (a["data"], a["model"], a["algorithm"]) == ("ring8", "mlp", "gan")
    assert a["description"].startswith("MLP GAN on a ring")
    assert (a["step"], a["steps"]) == (20, 20)
    assert a["error"] is None and a["mtime"] > 0
    assert a["last"]["step"] == 20 and isinstance(a["last"]["loss_D"], float)


def test_listing_carries_evaluation_results(client, world):
    runs = _runs(client)
    rows = list(csv.DictReader((world["runs"] / "a" / "metrics.csv").open()))
    assert "fid_raw" in rows[0]
    assert runs["a"]["eval"]["fid_raw"] == pytest.approx(float(rows[-1]["fid_raw"]))
    assert runs["a"]["eval_file"] is False
    # eval.json (``ganforge evaluate``) wins, and its NaN becomes null
    assert runs["sweep/b"]["eval"] == {"fid_raw": 1.25, "kid_raw": None}
    assert runs["sweep/b"]["eval_file"] is True


@pytest.mark.parametrize("run_id", ["a", "sweep/b"])
def test_metrics_match_the_csv(client, world, run_id):
    body = client.get(f"/api/run/{run_id}/metrics").json()
    with (world["runs"] / run_id / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(body["columns"]) == list(rows[0])
    for name, values in body["columns"].items():
        expected = [float(r[name]) if r[name] and math.isfinite(float(r[name])) else None for r in rows]
        assert values == pytest.approx(expected), name
    assert body["error"] is None
    titles = [g["title"] for g in body["groups"]]
    assert {"losses", "D scores", "grad norms"} <= set(titles)


def test_metrics_list_eval_columns_and_baseline(client):
    body = client.get("/api/run/a/metrics").json()
    assert "fid_raw" in body["eval_columns"] and "loss_D" not in body["eval_columns"]
    assert body["baseline"]["fid_raw"] >= 0
    assert ["fid_raw"] in [g["columns"] for g in body["groups"]]
    assert not any("_std_" in c for g in body["groups"] for c in g["columns"])
    final = client.get("/api/run/sweep/b/metrics").json()["final_eval"]
    assert final == {"step": 20, "metrics": {"fid_raw": 1.25, "kid_raw": None}}


def test_config_returns_the_text(client, world):
    response = client.get("/api/run/sweep/b/config")
    assert response.status_code == 200
    assert response.json()["text"] == (world["runs"] / "sweep" / "b" / "config.yaml").read_text()


def test_samples_are_listed_and_served_as_png(client, world):
    samples = client.get("/api/run/a/samples").json()["samples"]
    assert [s["step"] for s in samples] == [10, 20]
    for sample in samples:
        response = client.get(f"/api/run/a/file/{sample['file']}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.content == (world["runs"] / "a" / sample["file"]).read_bytes()


@pytest.mark.parametrize("url", [
    "/api/run/..%2F..%2Fetc/config",
    "/api/run/a/file/..%2F..%2Fsecret.txt",
    "/api/run/a/file/..%2Fsweep%2Fb%2Fconfig.yaml",          # another run: outside this one
    "/api/run/a/file/%2e%2e/%2e%2e/secret.txt",
    "/api/run/a/file/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/api/run/sweep/..%2Fa/config",                          # not a listed id
    "/api/run/link/config",                                  # link to a run outside RUNS_DIR
    "/api/run/loop/a/config",                                # link back to RUNS_DIR itself
    "/api/run/a/file/samples/leak.png",                      # link to a file outside
    "/api/run/notarun/config",
    "/api/run/sweep/metrics",                                # a folder of runs, not a run
    "/api/run/.hidden/config",
    "/api/run/deep/x/y/z/config",
    "/api/run/a/file/samples",                               # a folder, not a file
    "/api/run/a/file/missing.png",
    "/api/run//config",
    "/static/..%2Fboard.py",
    "/static/%2e%2e/server.py",
    "/nowhere",
])
def test_everything_outside_is_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "error" in response.json()
    assert b"TOP SECRET" not in response.content


def test_absolute_paths_are_404(client, world):
    secret, outside = world["secret"], world["outside"]
    for url in (f"/api/run/a/file/{quote(str(secret), safe='')}",
                f"/api/run/{quote(str(outside), safe='')}/config",
                f"/api/run/{quote(str(world['runs'] / 'a'), safe='')}/metrics",
                f"/api/run/a/file/{quote(str(world['runs'] / 'a' / 'config.yaml'), safe='')}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"TOP SECRET" not in response.content


def test_damaged_files_are_marked_not_fatal(client):
    runs = _runs(client)
    assert "not numbers" in runs["damaged"]["error"]
    assert "YAML" in runs["badconfig"]["error"]
    assert "UTF-8" in runs["binary"]["error"]
    body = client.get("/api/run/damaged/metrics").json()
    # the unterminated last line is a row still being written: dropped
    assert body["columns"] == {"step": [5.0, 10.0], "epoch": [0.0, 0.0], "loss_D": [1.5, None],
                               "loss_G": [0.7, 0.8]}
    assert runs["damaged"]["step"] == 10
    assert client.get("/api/run/badconfig/config").status_code == 200
    assert client.get("/api/run/binary/metrics").json()["columns"] == {}


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for element in ("runs-table", "curves", "timeline", "snapshot", "config", "overlay"):
        assert f'id="{element}"' in page.text
    for name in ("charts.js", "board.js", "board.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.content == (STATIC / name).read_bytes()


def test_charts_module_stays_small():
    source = (STATIC / "charts.js").read_text()
    assert len(source.splitlines()) < 200
    assert "lineChart" in source and "palette" in source


def test_changes_report_mtimes(client):
    changes = client.get("/api/changes").json()["runs"]
    assert set(changes) == set(_runs(client))
    assert all(t > 0 for t in changes.values())


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, "."]:
            path = Path(folder, name)
            stat = path.lstat()
            out[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return out


def test_read_only(client, world):
    before = _snapshot(world["base"])
    for run_id in _runs(client):
        for what in ("metrics", "config", "samples"):
            client.get(f"/api/run/{run_id}/{what}")
        for sample in client.get(f"/api/run/{run_id}/samples").json().get("samples", []):
            client.get(f"/api/run/{run_id}/file/{sample['file']}")
        client.get(f"/api/run/{run_id}/file/checkpoints/last.pt")
    for url in ("/", "/api/changes", "/static/board.js", "/api/run/a/file/..%2F..%2Fsecret.txt"):
        client.get(url)
    assert _snapshot(world["base"]) == before


def test_a_growing_run_is_seen(world):
    """A row appended by a live trainer shows on the next request (the cache keys on mtime+size)."""
    runs = world["base"] / "live"
    shutil.copytree(world["runs"] / "damaged", runs / "r")
    path = runs / "r" / "metrics.csv"
    path.write_text("step,loss_D\n5,1.0\n")
    client = TestClient(board.create_board_app(runs))
    assert client.get("/api/run/r/metrics").json()["columns"]["step"] == [5.0]
    with path.open("a") as fh:
        fh.write("10,0.9\n")
    assert client.get("/api/run/r/metrics").json()["columns"]["step"] == [5.0, 10.0]
    assert client.get("/api/runs").json()["runs"][0]["step"] == 10


def test_missing_runs_dir_is_a_clean_error(tmp_path):
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError):
        board.create_board_app(tmp_path / "nope")


def test_parse_metrics_tolerates_ragged_rows():
    columns, error = board.parse_metrics("step,a,b\n1,2\n2,3,4,5\n3,nan,inf\n")
    assert columns == {"step": [1.0, 2.0, 3.0], "a": [2.0, 3.0, None], "b": [None, 4.0, None]}
    assert error is None
    assert board.parse_metrics("") == ({}, None)
    assert board.parse_metrics("a,b\n1,2\n")[1] == "metrics.csv has no step column"


def test_a_server_error_is_json_without_traceback(world, monkeypatch):
    def broken(run_dir):
        raise RuntimeError("boom at /some/secret/path")

    monkeypatch.setattr(board, "list_samples", broken)
    client = TestClient(board.create_board_app(world["runs"]), raise_server_exceptions=False)
    response = client.get("/api/run/a/samples")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}


def test_the_board_answers_only_its_own_host_and_origin(world):
    from ganforge.web.server import AccessGate, allowed_hosts

    app = AccessGate(board.create_board_app(world["runs"]), hosts=allowed_hosts("127.0.0.1", 8766))
    with TestClient(app, base_url="http://127.0.0.1:8766") as c:
        assert c.get("/api/runs").status_code == 200
        assert c.get("/api/runs", headers={"Host": "localhost:8766"}).status_code == 200
        rebound = c.get("/api/runs", headers={"Host": "evil.example:8766"})
        assert rebound.status_code == 403 and "Host" in rebound.text
        assert c.post("/api/runs", headers={"Origin": "http://evil.example"}).status_code == 403
