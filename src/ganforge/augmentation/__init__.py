"""GAN data augmentation for class imbalance, and the classical remedies it is measured against.

* :mod:`~ganforge.data.imbalanced`: imbalanced training sets (and the registered
  ``imbalanced`` dataset, so ``ganforge train`` can train a conditional GAN on one);
* :mod:`~ganforge.augmentation.remedies`: none, random oversampling, class-weighted loss, SMOTE,
  classical augmentation, conditional-GAN balancing (optionally confidence-filtered);
* :mod:`~ganforge.augmentation.classifier`: the fixed-budget downstream classifier and its
  imbalance metrics;
* :mod:`~ganforge.augmentation.cli`: ``ganforge augment``.

The ``imbalanced`` dataset (:mod:`ganforge.data.imbalanced`) registers with the other datasets.
"""

from ganforge.augmentation.classifier import (
    ClassifierBudget,
    SmallCNN,
    evaluate_classifier,
    imbalance_metrics,
    train_classifier,
)
from ganforge.augmentation.remedies import (
    REMEDIES,
    TrainingSet,
    ac_head_judge,
    apply_remedy,
    classifier_judge,
    generator_sampler,
    sample_class,
    synthetic_only,
)
from ganforge.data.imbalanced import (
    class_counts,
    imbalanced,
    imbalanced_indices,
    make_imbalanced,
)

__all__ = [
    "REMEDIES", "ClassifierBudget", "SmallCNN", "TrainingSet", "ac_head_judge", "apply_remedy",
    "class_counts", "classifier_judge", "evaluate_classifier", "generator_sampler",
    "imbalance_metrics", "imbalanced", "imbalanced_indices", "make_imbalanced", "sample_class",
    "synthetic_only", "train_classifier",
]
