"""Text for text-to-image models: captions generated from measured image attributes, a word
vocabulary and a GRU caption encoder trained to match image features (see docs/text-to-image.md).
"""

from ganforge.text.captions import (
    CLASSES,
    Caption,
    captions_for,
    fit_thresholds,
    measure_images,
    parse_caption,
)
from ganforge.text.encoder import (
    EncoderSettings,
    TextEncoder,
    encode_texts,
    info_nce,
    load_or_train_text_encoder,
    train_text_encoder,
)
from ganforge.text.vocab import Vocabulary, tokenize

__all__ = [
    "CLASSES", "Caption", "EncoderSettings", "TextEncoder", "Vocabulary", "captions_for",
    "encode_texts", "fit_thresholds", "info_nce", "load_or_train_text_encoder", "measure_images",
    "parse_caption", "tokenize", "train_text_encoder",
]
