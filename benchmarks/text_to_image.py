"""Text to image with StackGAN on Fashion-MNIST: do the generated images show what held-out
captions say, and does stage II improve on stage I?

Protocol:
* Run: the ``fashion-stackgan`` preset (trained here, one CPU thread, timed; ``--quick`` trains a
  few hundred steps on a subset), or a finished run given with ``--run DIR``.
* Held-out captions: the ``fashion-captions`` *test* split (HELD-OUT templates and synonyms,
  never seen in training), one caption per image, embedded by the run's own frozen text encoder
  (``algorithm.encode_text``, no training data involved). One sample (stage I and stage II, the
  same codes) per caption.
* Class match: the shipped Fashion-MNIST LeNet (``load_classifier("fashion")``, 28x28 input: the
  2-px padding of the 32x32 images is cropped) classifies each stage-II image; the score is the
  fraction whose class is the caption's class (the real test images' accuracy is the ceiling).
  Reported over all held-out captions and split by the class word: captions that name the class
  with a synonym seen in training (in a held-out template, perhaps with held-out attribute
  words: the target, >= 85%), and captions whose class word is a held-out synonym the encoder
  reads as <unk> ("a tee", "a frock": their class match measures what the other words imply).
* Attributes: every generated image is measured and described with the training cut points
  (``CaptionedDataset.describe``); per attribute, agreement = the fraction of captions naming it
  whose image gets the same word, and for brightness the correlation between the caption's word
  (dark = -1, light = +1) and the image's measured brightness.
* FID (LeNet features, lower is better): stage I (16x16, bilinearly resized to 32, cropped to 28)
  and stage II (cropped to 28) against the real test images.
* Diversity: for the first held-out caption of each class, 50 samples; their mean pairwise LeNet
  feature distance over that of 50 real test images of the class (1 = as varied as the data).
* Figure: ``docs/figures/text_to_image.png``, held-out captions with stage-I and stage-II samples.

    python benchmarks/text_to_image.py [--quick] [--run DIR] [--root DIR] [--figure PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganforge.config import load_config
from ganforge.data import build_dataset
from ganforge.data.transforms import centre_crop
from ganforge.metrics.classifier import load_classifier
from ganforge.metrics.fid import fid_from_features
from ganforge.text.captions import CLASS_SYNONYMS, Caption
from ganforge.text.vocab import tokenize
from ganforge.train import Trainer, load_run
from ganforge.train.algorithms.stackgan import save_stage_figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402

PRESET = "fashion-stackgan"
SHARED_FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "text_to_image.png"
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"n_eval": 2000, "diversity": 50, "overrides": {}},
    "quick": {"n_eval": 300, "diversity": 20,
              "overrides": {"train.steps": 300, "algorithm.stage1_steps": 200, "data.limit": 3000,
                            "train.sample_every": 300, "train.checkpoint_every": 300}},
}


def train(root: str | None, overrides: dict[str, Any], out: Path) -> float:
    """Train the preset into ``out``; its wall time in seconds (data loading included)."""
    torch.set_num_threads(1)
    changes = dict(overrides)
    if root is not None:
        changes["data.root"] = root
    cfg = load_config(PRESET, overrides=changes)
    start = time.perf_counter()
    Trainer(cfg, out, progress=False).fit()
    return time.perf_counter() - start


@torch.no_grad()
def lenet(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, 64), logits (N, 10)) of 32x32 images."""
    feats, logits = [], []
    for i in range(0, len(x), 500):
        h = model.features(centre_crop(x[i:i + 500], 28).clamp(-1, 1))
        feats.append(h)
        logits.append(model.head(h))
    return torch.cat(feats), torch.cat(logits)


def names_class_in_training_words(caption: Caption) -> bool:
    """Whether the caption names its class with a TRAIN synonym (one the text encoder has seen);
    the other held-out captions use a HELD-OUT class synonym ("tee", "frock"), read as <unk>."""
    tokens = tokenize(str(caption))
    for phrase in CLASS_SYNONYMS[caption.class_index][0]:
        p = tokenize(phrase)
        if any(tokens[i:i + len(p)] == p for i in range(len(tokens) - len(p) + 1)):
            return True
    return False


def mean_pairwise(feats: torch.Tensor) -> float:
    d = torch.cdist(feats.double(), feats.double())
    n = len(feats)
    return float(d.sum() / (n * (n - 1)))


@torch.no_grad()
def evaluate(run_dir: Path, root: str | None, settings: dict[str, Any], figure: Path | None
             ) -> dict[str, Any]:
    run = load_run(run_dir)
    algo, G = run.algorithm, (run.ema_generator or run.generator)
    G.eval()
    data_cfg = dict(run.config.data)
    data_cfg.update({"split": "test", "limit": settings["n_eval"], "download": root is None})
    if root is not None:
        data_cfg["root"] = root
    test = build_dataset(data_cfg)
    captions = [caps[0] for caps in test.captions]  # one held-out caption per image
    texts = [str(c) for c in captions]
    e = algo.encode_text(texts)
    low, high = algo.sample_stages(len(texts), torch.Generator().manual_seed(1), e, G)
    low_up = F.interpolate(low, size=high.shape[-2:], mode="bilinear", align_corners=False)
    model, _ = load_classifier("fashion")
    classes = torch.tensor([c.class_index for c in captions])
    real_feats, real_logits = lenet(model, test.x)
    f1, logits1 = lenet(model, low_up)
    f2, logits2 = lenet(model, high)
    known = torch.tensor([names_class_in_training_words(c) for c in captions])
    hit2 = logits2.argmax(1) == classes
    out: dict[str, Any] = {
        "config": run.config.to_dict(),
        "n_eval": len(texts),
        "class_match": float(hit2.float().mean()),
        "share_known_class_word": float(known.float().mean()),
        "class_match_known_class_word": float(hit2[known].float().mean()),
        "class_match_heldout_class_word": float(hit2[~known].float().mean()) if (~known).any() else None,
        "class_match_stage1": float((logits1.argmax(1) == classes).float().mean()),
        "real_accuracy": float((real_logits.argmax(1) == test.y).float().mean()),
        "fid_stage1": fid_from_features(real_feats, f1),
        "fid_stage2": fid_from_features(real_feats, f2),
    }
    # attributes: the generated image's described word vs the caption's word
    measures, words = test.describe(high, classes)
    for attr in ("brightness", "size", "width", "shape"):
        named = [i for i, c in enumerate(captions) if attr in c.attributes]
        if named:
            agree = sum(words[i].get(attr) == captions[i].attributes[attr] for i in named)
            out[f"agree_{attr}"] = agree / len(named)
            out[f"named_{attr}"] = len(named)
    named = [i for i, c in enumerate(captions) if "brightness" in c.attributes]
    if len(named) > 2:
        sign = torch.tensor([1.0 if captions[i].attributes["brightness"] == "light" else -1.0 for i in named])
        value = measures["brightness"][named].float()
        out["brightness_correlation"] = float(torch.corrcoef(torch.stack([sign, value]))[0, 1])
    # diversity: samples of one caption vs real images of its class
    ratios = {}
    k = settings["diversity"]
    for c in range(10):
        first = next((i for i, cap in enumerate(captions) if cap.class_index == c), None)
        real_c = (test.y == c).nonzero().flatten()[:k]
        if first is None or len(real_c) < 2:
            continue
        x = algo.sample(k, torch.Generator().manual_seed(100 + c), e[first:first + 1].repeat(k, 1), G)
        ratios[c] = mean_pairwise(lenet(model, x)[0]) / mean_pairwise(real_feats[real_c])
    out["diversity_ratio_mean"] = sum(ratios.values()) / max(len(ratios), 1)
    out["diversity_ratio_min"] = min(ratios.values()) if ratios else None
    out["diversity_by_class"] = {str(c): r for c, r in ratios.items()}
    if figure is not None:
        path = save_figure(algo, G, captions, e, figure).resolve()
        out["figure"] = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    return out


@torch.no_grad()
def save_figure(algo, G, captions, e: torch.Tensor, path: Path, per_row: int = 4) -> Path:
    """One row per held-out caption (the first of each class): stage I (up-sampled) | stage II."""
    rows = [i for i in (next((j for j, cap in enumerate(captions) if cap.class_index == c), None)
                        for c in range(10)) if i is not None]
    text = e[rows].repeat_interleave(per_row, dim=0)
    low, high = algo.sample_stages(len(text), torch.Generator().manual_seed(7), text, G)
    return save_stage_figure(path, [str(captions[i]) for i in rows],
                             low.view(len(rows), per_row, *low.shape[1:]),
                             high.view(len(rows), per_row, *high.shape[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, a small evaluation")
    parser.add_argument("--run", type=Path, help="evaluate this finished run instead of training")
    parser.add_argument("--root", default=str(SHARED_FASHION) if SHARED_FASHION.is_dir() else None,
                        help="Fashion-MNIST folder (default ../shared/data/fashion-mnist when present)")
    parser.add_argument("--out", type=Path, help="where to train (default a temporary folder)")
    parser.add_argument("--figure", type=Path, help=f"default {FIGURE} (none with --quick)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = SETTINGS["quick" if args.quick else "full"]
    figure = args.figure or (None if args.quick else FIGURE)
    seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            run_dir = args.out or Path(tmp) / "run"
            seconds = train(args.root, settings["overrides"], run_dir)
        result = evaluate(run_dir, args.root, settings, figure)
    row = {"run": str(args.run or PRESET), "train_seconds": None if seconds is None else round(seconds, 1),
           **{k: v for k, v in result.items() if not isinstance(v, dict)}}
    columns = ["train_seconds", "class_match", "class_match_known_class_word",
               "class_match_heldout_class_word", "share_known_class_word", "class_match_stage1",
               "real_accuracy", "fid_stage1", "fid_stage2", "brightness_correlation",
               "agree_brightness", "agree_size",
               "agree_width", "agree_shape", "diversity_ratio_mean", "diversity_ratio_min"]
    print_table([row], columns)
    payload = {"quick": args.quick, "preset": PRESET, "config": result["config"], "result": row,
               "diversity_by_class": result["diversity_by_class"],
               "targets": {"class_match_known_class_word": ">= 0.85", "fid_stage2": "< fid_stage1"}}
    path = write_result("text_to_image" + ("_quick" if args.quick else ""), payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
