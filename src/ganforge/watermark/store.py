"""The watermarked run directory: a normal run (config.yaml, checkpoints/final.pt and last.pt
with the fine-tuned G) plus ``watermark/decoder.pt`` and ``watermark/key.json``.

Everything is written into a hidden sibling folder that is renamed onto the output at the end,
so an interrupted or failed write never leaves a half-written run behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import atomic_write_text, check_output_dir, folder_written_whole, read_npz_array
from ganforge.errors import GanforgeError
from ganforge.watermark.decoder import load_decoder, save_decoder
from ganforge.watermark.key import format_key, key_to_bits, key_to_hex

DECODER = Path("watermark") / "decoder.pt"
KEY = Path("watermark") / "key.json"


def check_new_run_dir(path: str | Path) -> Path:
    """A one-line error unless ``path`` can become a new run directory (absent, or an empty
    folder). Creates nothing."""
    path = check_output_dir(path, "output run directory")
    if path.is_dir() and any(path.iterdir()):
        raise GanforgeError(f"output run directory {path} already exists and is not empty",
                            "choose another -o folder")
    return path


def save_watermarked_run(run, result, out: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``run`` with ``result`` (a :class:`~ganforge.watermark.embed.Watermarked`) into the new
    run directory ``out``: its checkpoint with G (and its EMA copy, when the run keeps one)
    replaced by the watermarked generator and D by the fine-tuned one, its config, the decoder
    and the key. Returns ``out``."""
    from ganforge.config import save_config
    from ganforge.train.checkpoint import load_checkpoint, save_checkpoint

    out = check_new_run_dir(out)
    state = load_checkpoint(run.checkpoint)
    g_state = {k: v.detach().cpu() for k, v in result.generator.state_dict().items()}
    for name, tensor in g_state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GanforgeError(f"the watermarked generator's {name} is not finite",
                                "lower --lr or the loss weights and embed again")
    state["nets"] = {**state["nets"], "G": g_state}
    if result.settings.train_d:
        state["nets"]["D"] = {k: v.detach().cpu() for k, v in result.discriminator.state_dict().items()}
    if "G" in state["ema"]:
        state["ema"] = {**state["ema"], "G": {**state["ema"]["G"], "model": g_state}}
    key = result.key
    record = {"key_hex": key_to_hex(key), "key_bits": key_to_bits(key), "bits": len(key),
              "source_run": str(Path(run.path).absolute()), "source_checkpoint": str(run.checkpoint),
              "source_generator": "ema" if result.settings.ema else "G",
              "settings": _plain(vars(result.settings)), **(info or {})}
    state["watermark"] = {"key_bits": record["key_bits"], "bits": len(key),
                          "source_run": record["source_run"]}

    with folder_written_whole(out) as tmp:
        source_config = Path(run.path) / "config.yaml"
        if source_config.is_file():
            shutil.copyfile(source_config, tmp / "config.yaml")
        else:
            save_config(run.config, tmp / "config.yaml")
        save_checkpoint(state, tmp / "checkpoints" / "final.pt")
        shutil.copyfile(tmp / "checkpoints" / "final.pt", tmp / "checkpoints" / "last.pt")
        save_decoder(result.decoder, key, tmp / DECODER, {"key": format_key(key)})
        atomic_write_text(tmp / KEY, json.dumps(record, indent=2) + "\n")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _plain(vars(value))
    return value


def find_decoder(path: str | Path) -> Path:
    """``DIR/watermark/decoder.pt`` for a watermarked run directory, or ``path`` itself when it is
    a ``.pt`` file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        return path
    if not path.exists():
        raise GanforgeError(f"{path} does not exist",
                            "pass a run directory written by `ganforge watermark embed`")
    candidate = path / DECODER
    if not candidate.is_file():
        raise GanforgeError(f"{path} has no {DECODER.as_posix()}",
                            "pass a run directory written by `ganforge watermark embed`")
    return candidate


def load_images(path: str | Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] from an ``.npz`` (array ``x``, else its first array: float
    in [-1, 1] or uint8 0..255; (N, H, W) for grayscale), one PNG/JPEG, or a folder of them
    (recursively, sorted). Images of another size than ``shape`` are refused, never resized."""
    from ganforge.data.folder import IMAGE_SUFFIXES, find_images, load_image
    from ganforge.data.transforms import uint8_to_unit_range

    path = Path(path)
    c, h, w = shape
    want = f"{c}x{h}x{w} ({'grayscale' if c == 1 else 'RGB'} {h}x{w} px)"
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        if path.is_dir():
            files = find_images(path)
            if not files:
                raise GanforgeError(f"{path} holds no .png/.jpg/.jpeg images",
                                    "pass a folder of images or an .npz written by `ganforge sample`")
        elif path.is_file():
            files = [path]
        else:
            raise GanforgeError(f"image {path} does not exist", "pass an existing file or folder")
        images = []
        for file in files:
            im = load_image(file, c)
            if im.size != (w, h):
                raise GanforgeError(f"image {file} is {im.size[0]}x{im.size[1]} px but the decoder reads "
                                    f"{w}x{h} px", "pass images at the generator's own size (no resizing)")
            arr = np.asarray(im, dtype=np.uint8)
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        return uint8_to_unit_range(np.stack(images))
    if path.suffix.lower() != ".npz":
        raise GanforgeError(f"images {path} must be an .npz, a .png/.jpg or a folder of them",
                            "e.g. ganforge sample RUN -n 100 -o samples.npz")
    if not path.is_file():
        raise GanforgeError(f"images file {path} does not exist", "pass an existing .npz")
    arr = read_npz_array(path, "pass an .npz written by `ganforge sample -o FILE.npz`")
    if arr.ndim == 3 and c == 1:
        arr = arr[:, None]
    if arr.ndim != 4 or tuple(arr.shape[1:]) != (c, h, w):
        raise GanforgeError(f"the images in {path} have shape {tuple(arr.shape)} but the decoder reads "
                            f"N x {want}", "pass images made by the watermarked generator, at its size")
    if arr.dtype == np.uint8:
        return uint8_to_unit_range(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise GanforgeError(f"the images in {path} are {arr.dtype}, not float or uint8",
                            "save float images in [-1, 1] or uint8 images in 0..255")
    x = torch.from_numpy(arr.astype(np.float32))
    if not torch.isfinite(x).all():
        raise GanforgeError(f"the images in {path} contain NaN or inf", "pass finite images")
    if len(x) and (x.min() < -1.001 or x.max() > 1.001):
        raise GanforgeError(f"the images in {path} range over [{float(x.min()):.3g}, {float(x.max()):.3g}], "
                            "not [-1, 1]", "pass float images in [-1, 1] (as `ganforge sample` writes)")
    return x.clamp(-1.0, 1.0)


__all__ = ["DECODER", "KEY", "check_new_run_dir", "find_decoder", "load_decoder", "load_images",
           "save_watermarked_run"]
