"""Evaluation metrics with honest feature extractors (see docs/evaluation.md).

Metric objects follow the torchmetrics contract (``update(x, real=...)``, ``compute()``,
``reset()``); each also has a one-call function. Results are named after the feature extractor
that produced them (``fid_lenet_mnist``, ``kid_raw``...), never a bare "FID".

Importing the package registers every metric of :mod:`ganforge.metrics.registry` (the modules
imported below for that are the only ones that call ``register_metric``).
"""

import ganforge.metrics.clips  # noqa: F401  (frame_mse, frame_psnr, frame_ssim, frame_sharpness, fd_lenet_frames, temporal)
import ganforge.metrics.evaluate  # noqa: F401  (registers fid, kid, is, prdc, modes, class)
import ganforge.metrics.likelihood  # noqa: F401  (elbo, iwae)
import ganforge.metrics.paired  # noqa: F401  (l1, psnr, ssim)
import ganforge.metrics.ppl  # noqa: F401  (ppl)
import ganforge.metrics.restoration  # noqa: F401  (ychannel, sharpness, colourfulness)
import ganforge.metrics.rolls  # noqa: F401  (empty_bars, ... parallels: music runs)
import ganforge.metrics.smiles  # noqa: F401  (validity, ... properties: molecule runs, MOSES)
import ganforge.metrics.tabular  # noqa: F401  (quality, detection, efficacy, privacy)
import ganforge.metrics.unpaired  # noqa: F401  (cycle)
from ganforge.metrics.fid import FeatureStats, FrechetDistance, fid_from_features, frechet_distance
from ganforge.metrics.inception_score import InceptionScore, inception_score_from_logits
from ganforge.metrics.kid import KernelDistance, kid_from_features, mmd2_unbiased
from ganforge.metrics.prdc import PrecisionRecallDensityCoverage, knn_sq_radii, prdc
from ganforge.metrics.stacked_modes import stacked_mnist_modes, stacked_mode_metrics
from ganforge.metrics.stats import RunningMoments

__all__ = [
    "FeatureStats", "FrechetDistance", "InceptionScore", "KernelDistance",
    "PrecisionRecallDensityCoverage", "RunningMoments", "fid_from_features", "frechet_distance",
    "inception_score_from_logits", "kid_from_features", "knn_sq_radii", "mmd2_unbiased", "prdc",
    "stacked_mnist_modes", "stacked_mode_metrics",
]
