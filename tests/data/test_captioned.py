"""The captioned datasets: fashion-captions (real Fashion-MNIST, skipped when absent) and
captioned-folder (synthetic PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.data.base import DATASETS
from ganforge.errors import GanforgeError
from ganforge.text.captions import parse_caption, phrasings
from ganforge.text.vocab import tokenize

FASHION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    if not (FASHION / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not found beside the repo (../shared/data/fashion-mnist)")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("text-cache")
    common = {"name": "fashion-captions", "root": str(FASHION), "limit": 200,
              "encoder_images": 1500, "encoder_epochs": 3, "cache_dir": str(cache),
              "captions_per_image": 4}
    train = build_dataset(common)
    test = build_dataset({**common, "split": "test"})
    torch.set_num_threads(before)
    return train, test


def test_fashion_captions_fields_shapes_and_padding(fashion):
    train, test = fashion
    assert "fashion-captions" in DATASETS and "captioned-folder" in DATASETS
    for ds in (train, test):
        t = ds.tensors()
        assert ds.fields == ("x", "y", "text") and set(t) == {"x", "y", "text"}
        assert t["x"].shape == (200, 1, 32, 32) and t["x"].dtype == torch.float32
        assert t["x"].min() >= -1 and t["x"].max() <= 1
        assert (t["x"][..., :2, :] == -1).all() and (t["x"][..., :, -2:] == -1).all()
        assert t["y"].dtype == torch.int64 and t["text"].shape == (200, 4, ds.text_dim)
        assert ds.text_dim == 64 and len(ds.captions) == 200 and len(ds.captions[0]) == 4
        assert ds.extractor == "lenet_fashion" and ds.classes[9] == "Ankle boot"
        assert set(ds.attributes) >= {"brightness", "area", "width"}
        # the stored embeddings are the encoder's embeddings of the stored captions
        assert torch.allclose(ds.embed([str(ds.captions[5][2])])[0], t["text"][5, 2], atol=1e-5)
        # every caption names its image's class and only words the image has
        for i in range(0, 200, 7):
            for c in ds.captions[i]:
                assert c.class_index == int(t["y"][i])
                assert c.attributes.items() <= ds.words[i].items()
                assert parse_caption(c.text) == (c.class_index, c.attributes)


def test_fashion_test_split_uses_held_out_phrasings_and_the_same_encoder(fashion):
    train, test = fashion
    assert test.encoder_report["cached"] is True and train.encoder_report["cached"] is False
    assert test.vocab.words == train.vocab.words
    train_tokens = {tok for caps in train.captions for c in caps for tok in tokenize(c.text)}
    test_texts = [c.text for caps in test.captions for c in caps]
    assert not any(set(tokenize(p)) <= train_tokens for p in phrasings("test"))
    held_words = {tok for p in phrasings("test") for tok in tokenize(p)}
    assert any(held_words & set(tokenize(t)) for t in test_texts)
    # no test caption comes from a training template (their own words)
    assert not any({"picture", "image", "this"} & set(tokenize(t)) for t in test_texts)
    assert any("photo showing" in t for t in test_texts) and any("looks" in t for t in test_texts)


def test_fashion_encoder_beats_chance_on_held_out_captions(fashion):
    report = fashion[0].encoder_report
    held = report["heldout"]
    assert held["captions"] == 1000
    assert held["retrieval_top1"] > 3 * held["retrieval_chance"], report
    assert held["class_accuracy"] > 0.4, report                  # chance 0.1


def test_describe_crops_generated_padded_images_back(fashion):
    train, _ = fashion
    x, y = train.tensors()["x"][:20], train.tensors()["y"][:20]
    measures, words = train.describe(x, y)
    assert torch.allclose(measures["area"], train.attributes["area"][:20])
    assert words == train.words[:20]


# --------------------------------------------------------------------------- captioned-folder


def _folder(root: Path, n: int = 6) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        pixels = np.zeros((12, 12, 3), dtype=np.uint8)
        pixels[2:2 + i + 3, 2:10] = (40 * i, 255 - 40 * i, 128)
        name = f"img{i}.png"
        Image.fromarray(pixels).save(root / name)
        names.append(name)
    return names


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["file,caption"] + [f'{f},"{c}"' for f, c in rows]
    path.write_text("\n".join(lines) + "\n")


def test_captioned_folder_loads_images_and_embeds_their_captions(tmp_path, one_thread):
    names = _folder(tmp_path / "imgs")
    rows = [(n, f"a {'red' if i % 2 else 'green'} block number {i}") for i, n in enumerate(names)]
    rows.append((names[0], "a green block, the first one"))
    _write_csv(tmp_path / "imgs" / "captions.csv", rows)
    ds = build_dataset({"name": "captioned-folder", "root": str(tmp_path / "imgs"), "size": 8,
                        "captions_per_image": 3, "encoder_epochs": 5,
                        "cache_dir": str(tmp_path / "cache")})
    t = ds.tensors()
    assert ds.fields == ("x", "text") and t["x"].shape == (6, 3, 8, 8)
    assert t["text"].shape == (6, 3, ds.text_dim)
    assert ds.files == names
    assert sorted(ds.captions[0]) == sorted([rows[0][1], rows[-1][1], rows[0][1]]) or \
        set(ds.captions[0]) == {rows[0][1], rows[-1][1]}
    assert ds.captions[3] == [rows[3][1]] * 3 and len(ds.all_captions[0]) == 2
    assert torch.allclose(ds.embed([rows[3][1]])[0], t["text"][3, 0], atol=1e-5)
    assert ds.encoder.features == "pca" and ds.encoder_report["images"] == 6


@pytest.mark.parametrize("case, message", [
    ("missing", "captions file .* does not exist"),
    ("stranger", "line 3 names 'ghost.png', which is not an image"),
    ("uncaptioned", "image 'img5.png' has no caption"),
    ("empty", "line 2 has an empty caption for 'img0.png'"),
    ("header", "needs the columns file,caption"),
])
def test_captioned_folder_errors_are_one_line(tmp_path, case, message):
    names = _folder(tmp_path / "imgs")
    rows = [(n, f"block {i}") for i, n in enumerate(names)]
    csv = tmp_path / "imgs" / "captions.csv"
    if case == "stranger":
        rows.insert(1, ("ghost.png", "a ghost"))
    elif case == "uncaptioned":
        rows = rows[:-1]
    elif case == "empty":
        rows[0] = (names[0], "  ")
    if case == "header":
        csv.write_text("image,text\nimg0.png,block\n")
    elif case != "missing":
        _write_csv(csv, rows)
    with pytest.raises(GanforgeError, match=message) as err:
        build_dataset({"name": "captioned-folder", "root": str(tmp_path / "imgs"), "size": 8,
                       "cache_dir": str(tmp_path / "cache")})
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists()
