"""Config-value checks shared by the model builders (each failure is a one-line GanforgeError)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ganforge.errors import GanforgeError

IMAGES = "images (C, H, W)"


def positive_int(value: Any, key: str, model: str) -> int:
    """``value`` as an int >= 1; ``bool`` is refused even though it is an int subclass."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GanforgeError(f"model {model!r}: {key}={value!r} is not a positive integer",
                            f"set model.{key} to an integer >= 1")
    return value


def positive_ints(values: Any, key: str, model: str) -> tuple[int, ...]:
    """A list of layer widths, each an int >= 1 (an empty list is allowed)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise GanforgeError(f"model {model!r}: {key}={values!r} is not a list of layer widths",
                            f"set model.{key} to a list of integers, e.g. [256, 256]")
    return tuple(positive_int(v, key, model) for v in values)


def probability(value: Any, key: str, model: str) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise GanforgeError(f"model {model!r}: {key}={value!r} is not a rate in [0, 1)",
                            f"set model.{key} to a number in [0, 1), e.g. 0.3")
    return float(value)


def non_negative(value: Any, key: str, model: str) -> float:
    """A real number >= 0 (e.g. a LeakyReLU slope)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise GanforgeError(f"model {model!r}: {key}={value!r} is not a number >= 0",
                            f"set model.{key} to a number >= 0, e.g. 0.2")
    return float(value)


def flag(value: Any, key: str, model: str) -> bool:
    """A true/false switch; strings such as "no" are refused rather than read as True."""
    if not isinstance(value, bool):
        raise GanforgeError(f"model {model!r}: {key}={value!r} is not true/false",
                            f"set model.{key} to true or false")
    return value


def shaped(sample_shape: tuple[int, ...], model: str, layout: str, fix: str) -> tuple[int, ...]:
    """``sample_shape`` as a tuple, when it has as many sizes as ``layout`` names (``"images (C, H,
    W)"``: 3); otherwise the one-line error "model M needs <layout> but the data has shape S"."""
    shape = tuple(sample_shape)
    if len(shape) != layout.count(",") + 1:
        raise GanforgeError(f"model {model!r} needs {layout} but the data has shape {shape}", fix)
    return shape


def square_power_of_two(sample_shape: tuple[int, ...], model: str, min_side: int) -> tuple[int, int, int]:
    """(C, S, S) for images whose side S is a power of two >= ``min_side`` (the families that
    double 4 -> 8 -> ... -> S); otherwise a one-line error naming the padding that fixes it."""
    channels, height, width = shaped(sample_shape, model, IMAGES, "use model.name=mlp for points")
    if height != width or height < min_side or height & (height - 1):
        fix = 2 ** max(math.ceil(math.log2(min_side)), math.ceil(math.log2(max(height, width, 1))))
        raise GanforgeError(
            f"model {model!r} doubles 4 -> 8 -> ... and needs square images whose side is a power of "
            f"two >= {min_side}, got {height}x{width}",
            f"pad or resize the data to {fix}x{fix}, e.g. data.pad_to={fix} or data.size={fix}")
    return channels, height, width
