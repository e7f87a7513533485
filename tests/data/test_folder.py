from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.data.folder import folder
from ganforge.errors import GanforgeError


def save(path: Path, size=(32, 32), color=(255, 0, 0), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


@pytest.fixture
def classes(tmp_path) -> Path:
    """cats/ (2 red, different sizes), dogs/ (1 blue, in a nested folder), birds/ (1 green)."""
    save(tmp_path / "cats" / "a.png", (40, 30), (255, 0, 0))
    save(tmp_path / "cats" / "b.jpg", (32, 32), (255, 0, 0))
    save(tmp_path / "dogs" / "deep" / "c.PNG", (64, 64), (0, 0, 255))
    save(tmp_path / "birds" / "d.jpeg", (20, 50), (0, 255, 0))
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    save(tmp_path / ".hidden" / "e.png")
    return tmp_path


def test_class_folders_rgb(classes):
    ds = folder(str(classes), size=16)
    assert ds.x.shape == (4, 3, 16, 16) and ds.x.dtype == torch.float32
    assert ds.classes == ("birds", "cats", "dogs") and ds.num_classes == 3
    # sorted paths: birds/d.jpeg, cats/a.png, cats/b.jpg, dogs/deep/c.PNG
    assert ds.y.tolist() == [0, 1, 1, 2]
    colours = ds.x.mean((2, 3))
    expected = torch.tensor([[-1, 1, -1], [1, -1, -1], [1, -1, -1], [-1, -1, 1]]).float()
    torch.testing.assert_close(colours, expected, atol=0.02, rtol=0)  # jpeg is lossy
    assert ds.x.min() >= -1 and ds.x.max() <= 1


def test_grayscale(classes):
    ds = build_dataset({"name": "folder", "root": str(classes), "size": 8, "channels": 1})
    assert ds.x.shape == (4, 1, 8, 8)
    # PIL luma of pure red is 76/255 and of pure blue 29/255
    torch.testing.assert_close(ds.x[1].mean(), torch.tensor(76 / 127.5 - 1), atol=0.02, rtol=0)
    torch.testing.assert_close(ds.x[3].mean(), torch.tensor(29 / 127.5 - 1), atol=0.02, rtol=0)


def test_resize_keeps_aspect_and_centre_crops(tmp_path):
    # 60x20: left third black, middle white, right third black; shorter side -> 20 keeps 60x20,
    # the centre crop is the white middle
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, 20:40] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    ds = folder(str(tmp_path), size=20)
    assert ds.x.shape == (1, 3, 20, 20) and bool((ds.x == 1).all())
    assert ds.y is None and ds.num_classes is None


def test_labels_auto_off_when_images_sit_in_root(classes):
    save(classes / "loose.png")
    ds = folder(str(classes), size=8)
    assert len(ds) == 5 and ds.y is None and ds.num_classes is None
    with pytest.raises(GanforgeError, match="loose.png sits directly in.*data.labels=false"):
        folder(str(classes), size=8, labels=True)


def test_labels_false_and_determinism(classes):
    a = folder(str(classes), size=8, labels=False)
    b = folder(str(classes), size=8)
    assert a.y is None
    assert torch.equal(a.x, b.x)


def test_mixed_sizes_without_resize(tmp_path):
    save(tmp_path / "a.png", (32, 32))
    save(tmp_path / "b.png", (28, 28))
    with pytest.raises(GanforgeError) as err:
        folder(str(tmp_path), resize=False)
    assert str(err.value) == ("images of mixed sizes (a.png is 32x32, b.png is 28x28); "
                              "set data.resize=true or make them all one size")
    assert folder(str(tmp_path), size=28).x.shape == (2, 3, 28, 28)


def test_no_resize_uses_pixels_as_they_are(tmp_path):
    pixels = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(pixels, mode="L").save(tmp_path / "g.png")
    ds = folder(str(tmp_path), size=16, channels=1, resize=False)
    torch.testing.assert_close(ds.x[0, 0], torch.from_numpy(pixels).float() / 127.5 - 1)
    with pytest.raises(GanforgeError, match="16x16 but data.size is 32; set data.size=16"):
        folder(str(tmp_path), size=32, channels=1, resize=False)


def test_corrupt_image_is_named(tmp_path):
    save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(GanforgeError, match=r"cannot read image .*broken.png.*replace broken.png"):
        folder(str(tmp_path))


def test_truncated_image_is_named(tmp_path):
    good = save(tmp_path / "a.png", (64, 64))
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(GanforgeError, match="cut.png"):
        folder(str(tmp_path))


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist.*point data.root"):
        folder(str(tmp_path / "nope"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(GanforgeError, match="no .png/.jpg/.jpeg images found"):
        folder(str(tmp_path / "empty"))


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 4}, "data.channels must be 1 or 3"),
    ({"size": 0}, "data.size must be a positive int"),
])
def test_bad_options(classes, kwargs, match):
    with pytest.raises(GanforgeError, match=match):
        folder(str(classes), **kwargs)
