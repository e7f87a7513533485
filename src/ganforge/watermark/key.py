"""Watermark keys: k bits, written as a bit string (``0110...``, k characters) or as hex (k/4
digits, optionally ``0x``-prefixed; most significant bit first), and the binomial test of a
decoded key.

Under the null hypothesis "this image does not carry the key", each decoded bit matches the key
with probability 1/2, independently, so the chance that an image matches at least m of k bits is
the binomial tail ``P(M >= m) = sum_{j >= m} C(k, j) / 2^k`` (:func:`p_value`).
"""

from __future__ import annotations

import string

import torch

from ganforge.errors import GanforgeError

DEFAULT_BITS = 32
_HEX = frozenset(string.hexdigits)


def check_bits(bits: int) -> int:
    """A key length from 1 to 256 bits, or a one-line error."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 256:
        raise GanforgeError(f"the key length must be 1 to 256 bits, got {bits!r}", "pass e.g. --bits 32")
    return bits


def parse_key(text: str, bits: int = DEFAULT_BITS) -> torch.Tensor:
    """A key of ``bits`` bits from ``text``: ``bits`` characters of 0/1, or ``bits / 4`` hex digits
    (``0x`` prefix allowed, case ignored). Returns a float32 tensor (bits,) of 0s and 1s."""
    check_bits(bits)
    raw = str(text).strip().replace("_", "")
    body = raw[2:] if raw[:2].lower() == "0x" else raw
    hex_fix = f" or {bits // 4} hex digits" if bits % 4 == 0 else ""
    fix = f"pass {bits} characters of 0/1{hex_fix} (e.g. --key {random_example(bits)})"
    if raw == body and len(body) == bits and set(body) <= {"0", "1"}:
        return torch.tensor([float(c) for c in body])
    if bits % 4 == 0 and len(body) == bits // 4 and body and set(body) <= _HEX:
        value = int(body, 16)
        return torch.tensor([float((value >> (bits - 1 - i)) & 1) for i in range(bits)])
    if not body or not set(body) <= _HEX:
        raise GanforgeError(f"key {text!r} is neither a bit string nor hex", fix)
    raise GanforgeError(f"key {text!r} has {len(body)} characters, which fits no {bits}-bit key", fix)


def random_example(bits: int) -> str:
    """A fixed example key for error messages (hex when the length allows)."""
    pattern = "9f3a61c2e4b7085d" * 16
    return pattern[: bits // 4] if bits % 4 == 0 else ("10" * bits)[:bits]


def random_key(bits: int = DEFAULT_BITS, seed: int = 0) -> torch.Tensor:
    """A uniformly random key (float32 0/1, shape (bits,)) drawn from ``seed``."""
    check_bits(bits)
    return torch.randint(0, 2, (bits,), generator=torch.Generator().manual_seed(seed)).float()


def key_to_bits(key: torch.Tensor) -> str:
    """``0110...``: one character per bit."""
    return "".join("1" if float(b) > 0.5 else "0" for b in key.flatten())


def key_to_hex(key: torch.Tensor) -> str | None:
    """Hex digits, most significant bit first (None when the length is not a multiple of 4)."""
    bits = key_to_bits(key)
    if len(bits) % 4:
        return None
    return "".join(f"{int(bits[i:i + 4], 2):x}" for i in range(0, len(bits), 4))


def format_key(key: torch.Tensor) -> str:
    """``0x....`` when the length is a multiple of 4, else the bit string."""
    hexed = key_to_hex(key)
    return f"0x{hexed}" if hexed is not None else key_to_bits(key)


def p_value(matches: int, bits: int) -> float:
    """P(M >= matches) for M ~ Binomial(bits, 1/2): the chance that an image without the key
    matches at least ``matches`` of ``bits`` bits."""
    from scipy.stats import binom

    if matches <= 0:
        return 1.0
    return float(binom.sf(matches - 1, bits, 0.5))
