"""The shipped classifiers under their historical import path: they live in
:mod:`ganforge.weights`, low in the layers, so datasets, text encoders and models load them too."""

from ganforge.weights import (
    ARCHITECTURES,
    FEATURE_DIM,
    LeNetDigits,
    LeNetFashion,
    LeNetMNIST,
    load_classifier,
    read_provenance,
    sha256_file,
    weights_dir,
)

__all__ = ["ARCHITECTURES", "FEATURE_DIM", "LeNetDigits", "LeNetFashion", "LeNetMNIST", "load_classifier",
           "read_provenance", "sha256_file", "weights_dir"]
