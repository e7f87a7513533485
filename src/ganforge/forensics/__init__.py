"""Image forensics: is this image generated?

Three real-vs-generated detectors, trained on real images against the samples of trained runs:

* ``spectrum`` (:class:`SpectrumDetector`): logistic regression on the azimuthally averaged log
  power spectrum (:func:`radial_spectrum`), after Durall et al. (CVPR 2020, "Watch your
  up-convolution");
* ``cnn`` (:class:`CNNDetector`): a small CNN trained with blur + JPEG augmentation
  (:func:`blur_jpeg_augment`), after Wang et al. (CVPR 2020, "CNN-generated images are
  surprisingly easy to spot... for now"); :func:`random_resize` adds resampling to that
  augmentation (``p_resize``, off by default for ``cnn``);
* ``combined`` (:class:`CombinedDetector`): both, fitted on the same images, their P(generated)
  averaged (the CNN with the resize augmentation on).

The command line is ``ganforge detect train|score`` (:mod:`ganforge.forensics.cli`)::

    from ganforge.forensics import fit_detector, evaluate
    det = fit_detector("spectrum", real_images, generated_images)   # (N, C, H, W) in [-1, 1]
    p = det.predict_proba(images)                                    # P(generated), (N,)
"""

from ganforge.forensics.augment import (
    blur_jpeg_augment,
    check_augment_settings,
    gaussian_blur,
    jpeg_round_trip,
    random_resize,
)
from ganforge.forensics.cnn import CNNDetector, ForensicCNN
from ganforge.forensics.detector import (
    DETECTORS,
    CombinedDetector,
    build_detector,
    evaluate,
    fit_detector,
    load_detector,
    save_detector,
    train_detector,
)
from ganforge.forensics.images import quantise_8bit
from ganforge.forensics.spectrum import (
    SpectrumDetector,
    azimuthal_average,
    power_spectrum,
    radial_spectrum,
    to_grey,
)

__all__ = ["DETECTORS", "CNNDetector", "CombinedDetector", "ForensicCNN", "SpectrumDetector",
           "azimuthal_average", "blur_jpeg_augment", "build_detector", "check_augment_settings", "evaluate",
           "fit_detector", "gaussian_blur", "jpeg_round_trip", "load_detector", "power_spectrum",
           "quantise_8bit", "radial_spectrum", "random_resize", "save_detector", "to_grey",
           "train_detector"]
