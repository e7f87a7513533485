"""Metrics of image restoration (super-resolution, colorization, inpainting), images in [-1, 1].

* **Y-channel PSNR / SSIM** (the super-resolution convention): ITU-R BT.601 luma of RGB in
  [0, 1] on the studio range [16, 235],

      Y = 16 + 65.481 R + 128.553 G + 24.966 B,

  (``skimage.color.rgb2ycbcr``'s Y), a ``border`` of pixels cropped on every side (the scale
  factor, 4, by convention), PSNR = 10 log10(255^2 / mean (Y_x - Y_out)^2), SSIM with
  data_range 255; per image, then averaged.
* **High-frequency energy ratio** (sharpness): with |F|^2 the power spectrum of the mean-removed
  Y channel and rho = sqrt(f_x^2 + f_y^2) in cycles per pixel,

      E_hf(img) = sum_{rho > cutoff} |F|^2 / sum_{rho > 0} |F|^2,     ratio = E_hf(out) / E_hf(HR),

  averaged over images (cutoff 0.25 by default: above half the Nyquist frequency, which a x4
  bicubic upsampling cannot restore). 1 matches the HR's share of fine detail; blurred outputs
  score below 1.
* **Colourfulness** (Hasler and Suesstrunk 2003): with rg = R - G and yb = (R + G)/2 - B on RGB in
  [0, 255],  M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)  per image.
* **Masked PSNR / SSIM** (inpainting): PSNR over the pixels where the mask is 1 only (data range
  2), SSIM averaged over the mask's bounding box.

The registry's metrics of a translation run (on its held-out pairs, asked for by name):
``ychannel`` (``psnr_y``, ``ssim_y``), ``sharpness`` (``hf_ratio``) and ``colourfulness``
(``colourfulness``, ``colourfulness_target``), all for RGB images. The masked scores need the
inpainting's mask, which the caller passes.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.paired import PSNR_CAP, Translated, image_psnr, image_ssim
from ganforge.metrics.registry import HIGHER, NEITHER, MetricContext, MetricSpec, register_metric

BT601 = (65.481, 128.553, 24.966)


def luma(images: torch.Tensor) -> torch.Tensor:
    """BT.601 Y in [16, 235] of RGB images (N, 3, H, W) in [-1, 1] -> (N, H, W) (clamped)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise GanforgeError(f"Y-channel metrics need RGB images (N, 3, H, W), got {tuple(images.shape)}",
                            "pass RGB images")
    rgb = ((images.double().clamp(-1, 1) + 1) / 2)
    w = torch.tensor(BT601, dtype=torch.float64).view(1, 3, 1, 1)
    return 16 + (rgb * w).sum(dim=1)


def _crop(y: torch.Tensor, border: int) -> torch.Tensor:
    return y[..., border:y.shape[-2] - border, border:y.shape[-1] - border] if border else y


def y_scores(output: torch.Tensor, target: torch.Tensor, border: int = 4) -> dict[str, np.ndarray]:
    """Per-image ``psnr`` and ``ssim`` of the Y channel (``border`` px cropped); see the module
    docstring."""
    yo, yt = _crop(luma(output), border).numpy(), _crop(luma(target), border).numpy()
    pairs = list(zip(yo, yt, strict=True))
    return {"psnr": np.array([image_psnr(t, o, data_range=255) for o, t in pairs]),
            "ssim": np.array([image_ssim(t, o, data_range=255, channel_axis=None) for o, t in pairs])}


def high_frequency_share(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """E_hf per image (N,) of the Y channel of RGB images (N, 3, H, W) in [-1, 1] (module docstring)."""
    y = luma(images)
    y = y - y.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(y).abs() ** 2
    fy = torch.fft.fftfreq(y.shape[-2], dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(y.shape[-1], dtype=torch.float64)[None, :]
    rho = (fx ** 2 + fy ** 2).sqrt()
    total = power[:, rho > 0].sum(dim=1).clamp_min(1e-12)
    return power[:, rho > cutoff].sum(dim=1) / total


def high_frequency_ratio(output: torch.Tensor, target: torch.Tensor, cutoff: float = 0.25) -> float:
    """mean E_hf(output) / mean E_hf(target) (module docstring); 1: as much fine detail as the HR."""
    return float(high_frequency_share(output, cutoff).mean() / high_frequency_share(target, cutoff).mean())


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's M per image (N,) of RGB images (N, 3, H, W) in [-1, 1]."""
    rgb = (images.double().clamp(-1, 1) + 1) * 127.5
    r, g, b = rgb[:, 0].flatten(1), rgb[:, 1].flatten(1), rgb[:, 2].flatten(1)
    rg, yb = r - g, (r + g) / 2 - b
    std = (rg.std(dim=1, unbiased=False) ** 2 + yb.std(dim=1, unbiased=False) ** 2).sqrt()
    mean = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return std + 0.3 * mean


def masked_scores(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image ``psnr`` over the pixels where ``mask`` (N, 1, H, W) is 1 (data range 2) and
    ``ssim`` over the mask's bounding box (module docstring)."""
    out, tgt = output.double().clamp(-1, 1), target.double()
    m = mask.double().expand_as(out)
    mse = (((out - tgt) ** 2) * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    psnr = (10 * torch.log10(4.0 / mse.clamp_min(1e-10))).clamp(max=PSNR_CAP).numpy()
    ssim = np.empty(len(out))
    for i in range(len(out)):
        rows = mask[i, 0].any(dim=1).nonzero().flatten()
        cols = mask[i, 0].any(dim=0).nonzero().flatten()
        box = (slice(None), slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        ssim[i] = image_ssim(tgt[i][box].numpy(), out[i][box].numpy(), data_range=2.0)
    return {"psnr": psnr, "ssim": ssim}


def _needs_rgb(what: str):
    def applies(ctx: MetricContext) -> tuple[str, str] | None:
        if ctx.channels == 3:
            return None
        return (f"{what} needs RGB images, and these have {ctx.channels or 'no'} channel(s)",
                "choose l1, psnr or ssim")
    return applies


def _y(t: Translated) -> dict[str, float]:
    s = y_scores(t.output, t.target)
    return {"psnr_y": float(s["psnr"].mean()), "ssim_y": float(s["ssim"].mean())}


def _register(name: str, columns: dict[str, bool | None], compute, what: str, description: str) -> None:
    """A ``pairs`` metric of RGB translations, computed only when asked for by name."""
    register_metric(MetricSpec(name, lambda ctx: dict(columns), source="pairs", runs={"translation"},
                               compute=compute, applies=_needs_rgb(what), default=lambda ctx: False,
                               needs_features=False, description=description))


_register("ychannel", {"psnr_y": HIGHER, "ssim_y": HIGHER}, _y, "Y-channel PSNR/SSIM",
          "PSNR and SSIM of the BT.601 luma, 4-pixel border cropped (super-resolution)")
_register("sharpness", {"hf_ratio": NEITHER},
          lambda t: {"hf_ratio": high_frequency_ratio(t.output, t.target)},
          "the high-frequency energy ratio",
          "high-frequency energy of the outputs over the targets' (1: as sharp)")
_register("colourfulness", {"colourfulness": NEITHER, "colourfulness_target": NEITHER},
          lambda t: {"colourfulness": float(colourfulness(t.output).mean()),
                     "colourfulness_target": float(colourfulness(t.target).mean())},
          "colourfulness", "Hasler and Suesstrunk's colourfulness of the outputs and of the targets")


__all__ = ["colourfulness", "high_frequency_ratio", "high_frequency_share", "luma", "masked_scores",
           "y_scores"]
