import pytest
import torch

from ganforge.data.transforms import centre_crop, pad_images
from ganforge.errors import GanforgeError


def test_pad_centres_on_background_and_centre_crop_undoes_it():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    padded = pad_images(x, 32)
    assert padded.shape == (3, 1, 32, 32)
    assert torch.equal(padded[..., 2:30, 2:30], x)
    border = padded.clone()
    border[..., 2:30, 2:30] = -1
    assert (border == -1).all()
    assert torch.equal(centre_crop(padded, 28), x)


def test_an_odd_margin_puts_the_extra_pixel_after():
    padded = pad_images(torch.ones(1, 1, 2, 3), 5)
    rows, cols = (padded[0, 0] == 1).nonzero().unbind(1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (1, 2, 1, 3)


def test_centre_crop_refuses_images_smaller_than_the_window():
    with pytest.raises(GanforgeError, match="smaller than"):
        centre_crop(torch.zeros(1, 1, 8, 8), 9)
