"""Watermarking a trained GAN: every image its generator makes carries a k-bit key that a decoder
recovers (Yu et al. 2021, "Artificial fingerprinting for generative models"; Fei et al. 2022,
"Supervised GAN watermarking").

    from ganforge.train import load_run
    from ganforge.watermark import embed_watermark, parse_key, save_watermarked_run, verify

    run = load_run("runs/digits")
    result = embed_watermark(run, parse_key("9f3a61c2"))        # G' and its decoder
    save_watermarked_run(run, result, "runs/digits-marked")     # a normal run dir + watermark/
    verdict = verify(result.decoder, result.key, images)        # bit accuracy, binomial p-values

The command line is ``ganforge watermark embed|verify`` (:mod:`ganforge.watermark.cli`).
"""

from ganforge.watermark.augment import Augment, gaussian_blur, gaussian_noise, resize_down_up
from ganforge.watermark.decoder import Decoder, NullCode, bit_accuracy, load_decoder, save_decoder
from ganforge.watermark.embed import EmbedSettings, Watermarked, embed_watermark, generated, quick_check
from ganforge.watermark.key import format_key, key_to_bits, key_to_hex, p_value, parse_key, random_key
from ganforge.watermark.store import find_decoder, load_images, save_watermarked_run
from ganforge.watermark.verify import Verdict, verify

__all__ = ["Augment", "Decoder", "EmbedSettings", "NullCode", "Verdict", "Watermarked", "bit_accuracy",
           "embed_watermark", "find_decoder", "format_key", "gaussian_blur", "gaussian_noise", "generated",
           "key_to_bits", "key_to_hex", "load_decoder", "load_images", "p_value", "parse_key",
           "quick_check", "random_key", "resize_down_up", "save_decoder", "save_watermarked_run", "verify"]
