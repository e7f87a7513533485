"""Watermarking: decoder, keys, the binomial test, distortions, a learning check, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binom
from tests.conftest import one_error_line

from ganforge import GanforgeError, load_config
from ganforge.cli import main as ganforge_main
from ganforge.train import load_run
from ganforge.watermark import (
    Augment,
    Decoder,
    EmbedSettings,
    NullCode,
    bit_accuracy,
    embed_watermark,
    format_key,
    gaussian_blur,
    gaussian_noise,
    generated,
    key_to_bits,
    key_to_hex,
    load_decoder,
    p_value,
    parse_key,
    random_key,
    resize_down_up,
    save_watermarked_run,
    verify,
)
from ganforge.watermark.cli import main
from ganforge.watermark.verify import log10_p_value

KEY8 = "a5"  # 10100101
FAST = {"steps": 200, "batch_size": 32, "lr_g": 3e-4, "lr_w": 2e-3, "calibration": 500}


# --------------------------------------------------------------------------- decoder


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (3, 32, 32), (1, 28, 28)])
def test_decoder_shapes_and_gradients(shape):
    W = Decoder(shape, 32, width=8)
    x = (torch.rand(5, *shape) * 2 - 1).requires_grad_(True)
    logits = W(x)
    assert logits.shape == (5, 32)
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in W.parameters())
    bits = W.decode(x.detach())
    assert bits.shape == (5, 32) and set(bits.unique().tolist()) <= {0.0, 1.0}


def test_decoder_calibration_sets_per_bit_medians_and_refuses_other_sizes():
    W = Decoder((1, 8, 8), 16, width=4)
    x = torch.rand(101, 1, 8, 8) * 2 - 1
    threshold = W.calibrate(x)
    torch.testing.assert_close(threshold, W.logits(x).median(0).values)
    assert W.decode(x).mean(0).sub(0.5).abs().max() <= 0.5 / 101 + 1e-6  # every bit: half 1s
    with pytest.raises(GanforgeError, match="decoder reads 1x8x8"):
        W.decode(torch.zeros(2, 1, 16, 16))


def test_decoder_file_round_trip(tmp_path):
    from ganforge.watermark import save_decoder

    W = Decoder((1, 8, 8), 8, width=4)
    W.calibrate(torch.rand(20, 1, 8, 8))
    key = parse_key(KEY8, 8)
    save_decoder(W, key, tmp_path / "d.pt")
    torch.load(tmp_path / "d.pt", weights_only=True)  # plain tensors and numbers
    W2, key2, _ = load_decoder(tmp_path / "d.pt")
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(W2.logits(x), W.logits(x))
    torch.testing.assert_close(W2.threshold, W.threshold)
    assert torch.equal(key2, key)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GanforgeError, match="cannot read watermark decoder"):
        load_decoder(tmp_path / "bad.pt")


def test_null_code_bits_are_balanced_and_nearly_independent():
    x = torch.randn(4000, 1, 16, 16).clamp(-1, 1)
    null = NullCode(x[:2000], 32, seed=3)
    t = null(x[2000:])
    assert t.shape == (2000, 32)
    assert (t.mean(0) - 0.5).abs().max() < 0.1
    matches = (t == random_key(32, 0)).sum(1).double()
    assert abs(float(matches.mean()) - 16) < 1.0
    assert float(matches.std()) < 1.3 * math.sqrt(8)  # Binomial(32, 1/2) has std sqrt(8)


# --------------------------------------------------------------------------- keys and p-values


def test_key_round_trips_between_bits_and_hex():
    key = random_key(32, seed=7)
    assert torch.equal(parse_key(key_to_bits(key)), key)
    assert torch.equal(parse_key(key_to_hex(key)), key)
    assert torch.equal(parse_key(format_key(key)), key)  # 0x prefix
    assert key_to_bits(parse_key("0xA5", 8)) == "10100101"
    assert key_to_hex(parse_key("10100101", 8)) == "a5"
    assert key_to_bits(parse_key("1" * 32)) == "1" * 32
    assert key_to_bits(parse_key("00000001")) == "0" * 31 + "1"  # 8 characters = 8 hex digits
    assert torch.equal(parse_key("101", 3), torch.tensor([1.0, 0.0, 1.0]))
    assert key_to_hex(parse_key("101", 3)) is None and format_key(parse_key("101", 3)) == "101"


@pytest.mark.parametrize("text, bits, match", [
    ("1010", 32, "fits no 32-bit key"),          # too short either way
    ("0" * 33, 32, "fits no 32-bit key"),
    ("abcdefab0", 32, "fits no 32-bit key"),     # 9 hex digits
    ("xyz", 32, "neither a bit string nor hex"),
    ("", 32, "neither a bit string nor hex"),
    ("0x", 8, "neither a bit string nor hex"),
    ("0x10100101", 8, "fits no 8-bit key"),      # a 0x prefix means hex
    ("ab", 6, "fits no 6-bit key"),              # no hex form for 6 bits
    ("a5", 0, "1 to 256 bits"),
])
def test_bad_keys_are_refused(text, bits, match):
    with pytest.raises(GanforgeError, match=match):
        parse_key(text, bits)


@pytest.mark.parametrize("bits", [1, 8, 32, 64])
def test_p_value_is_the_binomial_tail(bits):
    for m in range(bits + 1):
        tail = sum(binom.pmf(j, bits, 0.5) for j in range(m, bits + 1))
        exact = sum(math.comb(bits, j) for j in range(m, bits + 1)) / 2**bits
        assert p_value(m, bits) == pytest.approx(tail, rel=1e-9, abs=1e-300)
        assert p_value(m, bits) == pytest.approx(exact, rel=1e-9)
        if p_value(m, bits) > 0:
            assert log10_p_value(m, bits) == pytest.approx(math.log10(p_value(m, bits)), abs=1e-9)
    assert p_value(0, bits) == 1.0
    assert log10_p_value(32_000, 32_000) == pytest.approx(-32_000 * math.log10(2))  # far below 1e-308


# --------------------------------------------------------------------------- distortions


def test_distortions_keep_shape_and_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16, generator=g) * 2 - 1
    for y in (gaussian_noise(x, 0.5, g), gaussian_noise(x, torch.linspace(0, 1, 6), g),
              gaussian_blur(x, 1.0), gaussian_blur(x, torch.linspace(0, 2, 6)), resize_down_up(x, 0.5),
              resize_down_up(x, 0.3), Augment(p=1.0)(x, g), Augment()(x, g)):
        assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and torch.isfinite(y).all()
    torch.testing.assert_close(gaussian_noise(x, 0.0, g), x)
    torch.testing.assert_close(gaussian_blur(x, 0.0), x)
    torch.testing.assert_close(resize_down_up(x, 1.0), x)
    torch.testing.assert_close(gaussian_blur(x, torch.tensor([0.0, 1, 1, 1, 1, 1]))[0], x[0])
    flat = torch.full((2, 1, 8, 8), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)  # a blur keeps constants
    torch.testing.assert_close(resize_down_up(flat, 0.5), flat)
    assert gaussian_blur(x, 1.0).std() < x.std()  # and smooths
    noisy = gaussian_noise(torch.zeros(1, 1, 64, 64), 0.1, g)
    assert 0.09 < float(noisy.std()) < 0.11


def test_distortions_are_differentiable():
    x = (torch.rand(4, 1, 8, 8) * 1.6 - 0.8).requires_grad_(True)
    y = Augment(p=1.0)(x, torch.Generator().manual_seed(1))
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------- learning check


@pytest.fixture(scope="module")
def marked(digits_run):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures start before the function-scoped autouse one
    try:
        run = load_run(digits_run)
        result = embed_watermark(run, parse_key(KEY8, 8), EmbedSettings(**FAST), log_every=50)
    finally:
        torch.set_num_threads(before)
    return run, result


def test_embedding_makes_the_key_readable(marked):
    run, result = marked
    assert result.history[-1]["step"] == FAST["steps"]
    x = generated(result.generator, 400, seed=99)
    x0 = generated(result.reference, 400, seed=99)
    acc = float(bit_accuracy(result.decoder.decode(x), result.key).mean())
    acc0 = float(bit_accuracy(result.decoder.decode(x0), result.key).mean())
    assert acc > 0.9, acc                 # chance is 0.5
    assert 0.3 < acc0 < 0.7, acc0         # the unwatermarked G's images: no key
    assert float((x - x0).pow(2).mean().sqrt()) < 0.3  # G' stays close to G
    # the run itself is untouched: its G still makes the reference images
    torch.testing.assert_close(generated(run.generator, 400, seed=99), x0)
    verdict = verify(result.decoder, result.key, x[:50])
    assert verdict.bit_accuracy > 0.9 and verdict.set_p_value < 1e-30
    assert torch.equal(verdict.recovered, result.key)


def test_watermarked_run_dir_loads_and_samples(marked, tmp_path):
    run, result = marked
    out = save_watermarked_run(run, result, tmp_path / "marked", {"note": 1})
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "watermark"]
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind
    again = load_run(out)
    x = again.sample(64, seed=5)
    torch.testing.assert_close(x, generated(result.generator, 64, seed=5))
    assert torch.equal(again.sample(8, ema=True, seed=1), again.sample(8, seed=1))  # EMA = G'
    assert load_run(out, "last").step == run.step == again.step
    W, key, _ = load_decoder(out / "watermark" / "decoder.pt")
    assert bit_accuracy(W.decode(x), key).mean() > 0.9
    record = json.loads((out / "watermark" / "key.json").read_text())
    assert record["key_hex"] == "a5" and record["bits"] == 8 and record["note"] == 1
    with pytest.raises(GanforgeError, match="not empty"):
        save_watermarked_run(run, result, out)


def test_embed_refuses_a_vae_and_points(vae_run, ring_run):
    with pytest.raises(GanforgeError, match="not a GAN"):
        embed_watermark(load_run(vae_run), parse_key(KEY8, 8), EmbedSettings(steps=1))
    with pytest.raises(GanforgeError, match="not images"):
        embed_watermark(load_run(ring_run), parse_key(KEY8, 8), EmbedSettings(steps=1))
    for bad in ({"steps": 0}, {"lr_g": -1.0}, {"w_rec": float("nan")}, {"w_bits": 0.0}):
        with pytest.raises(GanforgeError):
            EmbedSettings(**bad).check()


def test_conditional_run_and_frozen_d(conditional_run, tmp_path):
    run = load_run(conditional_run)
    D_before = {k: v.clone() for k, v in run.experiment.networks["D"].state_dict().items()}
    settings = EmbedSettings(steps=3, batch_size=8, calibration=50, train_d=False)
    result = embed_watermark(run, parse_key(KEY8, 8), settings)
    for k, v in result.discriminator.state_dict().items():
        torch.testing.assert_close(v, D_before[k])  # frozen
    out = save_watermarked_run(run, result, tmp_path / "cond-marked")
    again = load_run(out)
    assert again.num_classes == 10 and again.sample(20, labels=again.labels(20, 3)).shape == (20, 1, 8, 8)
    trained = embed_watermark(run, parse_key(KEY8, 8), EmbedSettings(steps=3, batch_size=8, calibration=50))
    assert "loss_D" in trained.history[-1] and "loss_D" not in result.history[-1]


# --------------------------------------------------------------------------- command line


def wm(*argv) -> int:
    return main([str(a) for a in argv])


def test_cli_embed_sample_verify_end_to_end(digits_run, tmp_path, capsys):
    out = tmp_path / "marked"
    assert wm("embed", digits_run, "--key", "0xa5", "--bits", 8, "-o", out, "--steps", 150,
              "--batch-size", 32, "--lr", 3e-4, "--seed", 1) == 0
    printed = capsys.readouterr().out
    assert "embedding key 0xa5 (8 bits)" in printed and f"wrote {out}" in printed
    assert (out / "watermark" / "decoder.pt").is_file() and (out / "watermark" / "key.json").is_file()
    # the new run is a normal run: sample / info accept it
    assert ganforge_main(["sample", str(out), "-n", "40", "-o", str(tmp_path / "s.npz")]) == 0
    assert ganforge_main(["info", str(out)]) == 0
    capsys.readouterr()
    assert wm("verify", out, tmp_path / "s.npz", "-o", tmp_path / "v.json") == 0
    printed = capsys.readouterr().out
    assert "40 images" in printed and "recovered key  0xa5" in printed and "bit accuracy" in printed
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["bit_accuracy"] > 0.85 and len(verdict["per_image"]) == 40
    # one PNG, then a folder of PNGs, written as `ganforge sample` values would be
    with np.load(tmp_path / "s.npz") as f:
        x = f["x"]
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i in range(5):
        Image.fromarray(np.rint((x[i, 0] + 1) * 127.5).astype(np.uint8)).save(pngs / f"{i}.png")
    assert wm("verify", out, pngs / "0.png") == 0
    printed = capsys.readouterr().out
    assert "1 image from" in printed and "p-value" in printed and "bits match" in printed
    assert wm("verify", out, pngs, "--key", "01011010") == 0  # the complement: no match
    printed = capsys.readouterr().out
    assert "5 images" in printed and "flagged        0/5" in printed


def test_cli_bad_inputs_one_line_exit_2_nothing_written(digits_run, vae_run, tmp_path, capsys):
    out = tmp_path / "out"
    cases = [
        (["embed", digits_run, "--key", "a5a", "--bits", 8, "-o", out], ["fits no 8-bit key"]),
        (["embed", digits_run, "--key", "zz", "--bits", 8, "-o", out], ["neither a bit string nor hex"]),
        (["embed", digits_run, "--key", "a5", "-o", out], ["fits no 32-bit key"]),
        (["embed", digits_run, "--key", "a5", "--bits", 8, "-o", out, "--steps", 0], ["steps"]),
        (["embed", tmp_path / "nowhere", "--key", "a5", "--bits", 8, "-o", out], ["does not exist"]),
        (["embed", digits_run, "--key", "a5", "--bits", 8], ["-o"]),
    ]
    for argv, fragments in cases:
        assert wm(*argv) == 2, argv
        one_error_line(capsys, *fragments)
        assert not out.exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    assert wm("embed", digits_run, "--key", "a5", "--bits", 8, "-o", full) == 2
    one_error_line(capsys, "not empty")
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    # a run that is not a GAN
    assert wm("embed", vae_run, "--key", "a5", "--bits", 8, "-o", out) == 2
    one_error_line(capsys, "not a GAN")
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_cli_verify_bad_inputs(marked, digits_run, tmp_path, capsys):
    run, result = marked
    out = save_watermarked_run(run, result, tmp_path / "marked")
    np.savez(tmp_path / "big.npz", x=np.zeros((3, 1, 16, 16), np.float32))
    np.savez(tmp_path / "range.npz", x=np.full((3, 1, 8, 8), 3.0, np.float32))
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(big / "a.png")
    (tmp_path / "empty").mkdir()
    report = tmp_path / "v.json"
    cases = [
        ([out, tmp_path / "big.npz", "-o", report], ["have shape (3, 1, 16, 16)", "1x8x8"]),
        ([out, big, "-o", report], ["16x16 px", "8x8 px"]),
        ([out, tmp_path / "range.npz", "-o", report], ["not [-1, 1]"]),
        ([out, tmp_path / "empty", "-o", report], ["no .png"]),
        ([out, tmp_path / "none.npz", "-o", report], ["does not exist"]),
        ([out, tmp_path / "big.npz", "--key", "abc", "-o", report], ["fits no 8-bit key"]),
        ([tmp_path, tmp_path / "big.npz", "-o", report], ["watermark/decoder.pt"]),
        ([digits_run, tmp_path / "big.npz", "-o", report], ["watermark/decoder.pt"]),
        ([out, tmp_path / "big.npz", "--alpha", 2, "-o", report], ["--alpha"]),
        ([out, tmp_path / "big.npz", "-o", tmp_path / "v.txt"], [".json"]),
    ]
    for argv, fragments in cases:
        assert wm("verify", *argv) == 2, argv
        one_error_line(capsys, *fragments)
        assert not report.exists() and not (tmp_path / "v.txt").exists()


def test_cli_is_registered_in_the_style_of_the_main_parser():
    import argparse

    from ganforge.watermark.cli import add_watermark_parser, cmd_watermark

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_watermark_parser(sub)
    args = parser.parse_args(["watermark", "verify", "RUN", "x.npz"])
    assert args.watermark_action == "verify" and args.alpha == 1e-3 and callable(cmd_watermark)
    assert load_config("digits-dcgan").algorithm["name"] == "gan"


def test_wired_into_the_main_cli(digits_run, tmp_path, capsys):
    from ganforge import cli

    assert cli.main(["watermark", "embed", str(digits_run), "--key", "0x12", "-o", str(tmp_path / "m")]) == 2
    assert "key" in capsys.readouterr().err  # the default 32-bit key length refuses 8 bits
    assert not (tmp_path / "m").exists()
