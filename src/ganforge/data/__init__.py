"""Datasets: toy 2D distributions, scikit-learn digits, the MNIST family, image folders, tables and
numeric columns as feature vectors.

Importing this package registers every built-in dataset in :data:`DATASETS`; configs then name
one with ``data: {name: ..., <builder keyword arguments>}`` and :func:`build_dataset` builds it.
"""

from ganforge.data import (  # noqa: F401  (register the datasets)
    captioned,
    digits,
    folder,
    imbalanced,
    mnist,
    molecules,
    music,
    paired,
    photos,
    sequence,
    stacked_mnist,
    table,
    toy2d,
    unpaired,
    vectors,
)
from ganforge.data.base import (
    DATASETS,
    AnyDataset,
    ArrayDataset,
    StreamDataset,
    build_dataset,
    datasets_of_kind,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "AnyDataset",
    "ArrayDataset",
    "StreamDataset",
    "build_dataset",
    "datasets_of_kind",
    "register_dataset",
]
