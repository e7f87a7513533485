"""The play session on its own (no web server): settings, live changes, steps, frames, runs."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.train import load_run
from ganforge.web.session import (
    HEATMAP,
    MANIFOLD,
    N_POINTS,
    PlaySession,
    PlaySettings,
    divergences,
    settings_from_config,
)


@pytest.fixture
def session(tmp_path, one_thread):
    s = PlaySession(tmp_path / "runs")
    yield s
    s.close()


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("changes, words", [
    ({"loss": "wasserstein"}, "loss"), ({"g_depth": 0}, "g_depth"), ({"g_width": 2.5}, "g_width"),
    ({"lr_g": "fast"}, "lr_g"), ({"lr_d": float("nan")}, "lr_d"), ({"colour": 1}, "unknown setting"),
    ({"points": [[0, 0]]}, "points"), ({"points": [[0, float("inf")], [1, 1]]}, "points"),
    ({"points": [[0, 50], [1, 1]]}, "points"), ({"spectral_norm": 1}, "spectral_norm"),
    ({"batch_size": 100, "pack": 3}, "multiple"), ({"self_condition": 1}, "self_condition"),
    ({"data": "drawn"}, "points"), ({"d_steps": True}, "d_steps"), ("loss", "JSON object"),
])
def test_bad_settings_are_one_line_errors_and_change_nothing(session, changes, words):
    before = session.settings
    with pytest.raises(GanforgeError, match=words) as err:
        session.configure(changes)
    assert "\n" not in str(err.value) and ";" in str(err.value)  # the problem; the fix
    assert session.settings == before


def test_an_impossible_combination_is_refused_by_the_model_and_keeps_the_old_networks(session):
    session.configure({"pack": 2})
    trainer = session.trainer
    with pytest.raises(GanforgeError, match="pack"):
        session.configure({"self_condition": 4})  # PacGAN does not combine with a conditional D
    assert session.trainer is trainer and session.settings.self_condition == 0


def test_settings_round_trip_through_the_config(session):
    settings = PlaySettings().updated({"data": "spiral", "g_depth": 3, "g_width": 32, "d_width": 48,
                                       "z_dim": 4, "prior": "uniform", "loss": "hinge",
                                       "optimizer": "rmsprop", "lr_g": 3e-4, "lr_d": 5e-4, "d_steps": 3,
                                       "batch_size": 64, "spectral_norm": True, "r1": 0.5, "pack": 2,
                                       "seed": 9})
    assert settings_from_config(settings.to_config()) == settings
    drawn = PlaySettings().updated({"points": [[0, 0], [1, 2], [3, 1]]})
    assert drawn.data == "drawn"
    assert settings_from_config(drawn.to_config()) == drawn


def test_one_sided_steps_update_only_that_network(session):
    G, D = session.trainer.exp.networks["G"], session.trainer.exp.networks["D"]
    g0, d0 = _params(G), _params(D)
    session.step("D")
    assert _same(_params(G), g0) and not _same(_params(D), d0)
    d1 = _params(D)
    session.step("G")
    assert not _same(_params(G), g0) and _same(_params(D), d1)
    session.step("both")
    assert session.trainer.step == 3 and [r["step"] for r in session.history] == [1, 2, 3]
    with pytest.raises(GanforgeError, match="both, D or G"):
        session.step("E")


def test_live_changes_keep_what_still_fits(session):
    for _ in range(3):
        session.step()
    G, D = session.trainer.exp.networks["G"], session.trainer.exp.networks["D"]
    g, d = _params(G), _params(D)
    session.configure({"loss": "lsgan", "lr_d": 1e-4, "d_steps": 2, "data": "moons"})
    assert session.trainer.step == 3  # the run goes on
    assert _same(_params(session.trainer.exp.networks["G"]), g)
    assert _same(_params(session.trainer.exp.networks["D"]), d)
    assert session.trainer.exp.optimizers["D"].state  # Adam's moments carried over
    session.configure({"d_width": 32})  # a new D, the same G
    assert _same(_params(session.trainer.exp.networks["G"]), g)
    assert session.trainer.exp.networks["D"].state_dict()["hidden.0.weight"].shape == (32, 2)
    session.configure({"optimizer": "sgd"})
    assert not session.trainer.exp.optimizers["D"].state  # another optimiser starts clean
    session.step()
    assert session.trainer.step == 4


def test_a_frame_pictures_the_networks(session):
    for _ in range(5):
        session.step()
    frame, cursor = session.frame()
    assert frame["type"] == "frame" and frame["step"] == 5 and cursor == (0, 5)
    assert len(frame["real"]) == len(frame["fake"]) == len(frame["arrows"]) == N_POINTS
    assert len(frame["heatmap"]["values"]) == HEATMAP * HEATMAP and frame["heatmap"]["kind"] == "probability"
    assert len(frame["manifold"]["points"]) == MANIFOLD * MANIFOLD
    assert [row["step"] for row in frame["metrics"]] == [1, 2, 3, 4, 5]
    assert {"loss_D", "loss_G", "d_real", "d_fake"} <= frame["metrics"][0].keys()
    assert frame["divergence"]["jsd"] > 0 and frame["divergence"]["w1"] > 0
    # the heatmap is D(x) = sigmoid(D's logit) on the grid: row j is y_j, column i is x_i
    D = session.trainer.exp.networks["D"].eval()
    xmin, xmax, ymin, ymax = frame["bounds"]
    i, j = 7, 30
    x = xmin + i * (xmax - xmin) / (HEATMAP - 1)
    y = ymin + j * (ymax - ymin) / (HEATMAP - 1)
    with torch.no_grad():
        expected = torch.sigmoid(D(torch.tensor([[x, y]]))).item()
    assert frame["heatmap"]["values"][j * HEATMAP + i] == pytest.approx(expected, abs=2e-4)
    # each arrow points along -grad_x of the non-saturating G loss, -log sigmoid(D(x))
    x0, y0, dx, dy = frame["arrows"][3]
    point = torch.tensor([[x0, y0]], requires_grad=True)
    (grad,) = torch.autograd.grad(-torch.nn.functional.logsigmoid(D(point)).sum(), point)
    cosine = (-grad[0] @ torch.tensor([dx, dy])) / (grad.norm() * math.hypot(dx, dy))
    assert cosine.item() == pytest.approx(1.0, abs=1e-3)
    # the next frame carries only the new rows
    session.step()
    frame, cursor = session.frame(cursor)
    assert [row["step"] for row in frame["metrics"]] == [6]


def test_a_critic_loss_shows_raw_values_and_the_image_mode_a_grid(session):
    session.configure({"loss": "wgan-gp"})
    session.step()
    frame, _ = session.frame()
    assert frame["heatmap"]["kind"] == "critic"
    session.configure({"mode": "image", "z_dim": 16, "g_width": 128, "d_width": 128})
    session.step()
    frame, _ = session.frame()
    assert frame["image"].startswith("data:image/png;base64,") and "heatmap" not in frame
    assert 0 < frame["scores"]["confidence"] <= 1 and 1 <= frame["scores"]["classes"] <= 10


def test_divergences_against_references():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(N_POINTS, 2, generator=gen)
    bounds = [-4.0, 4.0, -4.0, 4.0]
    same = divergences(a, a, bounds)
    assert same["jsd"] == 0 and same["w1"] == 0
    shifted = divergences(a, a + torch.tensor([0.7, 0.0]), bounds)
    assert shifted["w1"] == pytest.approx(0.7, abs=1e-4)  # a translation moves every point by 0.7
    ot = pytest.importorskip("ot")
    b = torch.randn(N_POINTS, 2, generator=gen) * 0.5 + 1
    cost = ot.dist(a.double().numpy(), b.double().numpy(), metric="euclidean")
    uniform = np.full(N_POINTS, 1 / N_POINTS)
    assert divergences(a, b, bounds)["w1"] == pytest.approx(ot.emd2(uniform, uniform, cost), abs=1e-4)
    far = divergences(a, a + 100, [-4.0, 4.0, -4.0, 4.0])  # disjoint histograms: JSD = log 2
    assert far["jsd"] == pytest.approx(math.log(2), abs=1e-4)


def test_play_learns_the_ring(session):
    """A learning check: the default 2D model halves W1 to the ring in a few hundred steps."""
    frame, _ = session.frame()
    start = frame["divergence"]["w1"]
    for _ in range(600):
        session.step()
    session._divergence = None  # force a fresh estimate
    frame, _ = session.frame()
    assert frame["divergence"]["w1"] < 0.5 * start


def test_play_and_pause_train_in_the_background(session):
    session.configure({"speed": 100})
    session.play()
    deadline = time.time() + 10
    while session.trainer.step < 20 and time.time() < deadline:
        time.sleep(0.05)
    session.pause()
    assert not session.running and session.trainer.step >= 20
    assert session.frame()[0]["step"] == session.trainer.step  # the picture shows the last step
    step = session.trainer.step
    time.sleep(0.2)
    assert session.trainer.step == step


def test_no_frame_says_stopped_before_the_last_step_is_pictured(session, monkeypatch):
    # a page reads the step of the first "stopped" frame and single-steps from it
    train_step = session.trainer.train_step

    def slow(only=None):
        time.sleep(0.3)
        return train_step(only)

    monkeypatch.setattr(session.trainer, "train_step", slow)
    session.configure({"speed": 10})
    session.play()
    time.sleep(0.45)  # inside the second step of the first ten
    pauser = threading.Thread(target=session.pause)
    pauser.start()
    time.sleep(0.05)
    assert session.frame()[0]["running"]  # the thread's last step is not pictured yet
    pauser.join()
    frame = session.frame()[0]
    assert not frame["running"] and frame["step"] == session.trainer.step
    assert session.trainer.step <= 3  # the pause stopped the batch of ten


def test_a_failing_step_pauses_play_with_its_reason(session, monkeypatch):
    def broken(only=None):
        raise GanforgeError("training diverged: the loss is not finite")

    monkeypatch.setattr(session.trainer, "train_step", broken)
    session.play()
    session._thread.join(timeout=5)
    assert not session.running and "diverged" in session.error
    frame, _ = session.frame()
    assert "diverged" in frame["error"]


def test_reset_restarts_the_history_and_the_step(session):
    session.step()
    session.reset()
    assert session.trainer.step == 0 and session.history == [] and session.history_id == 1
    frame, cursor = session.frame((0, 1))  # an old cursor: the rows start again
    assert cursor == (1, 0)


def test_save_writes_a_normal_run_and_load_replays_it(session, tmp_path, capsys):
    session.configure({"data": "lines", "loss": "hinge", "g_width": 32})
    for _ in range(7):
        session.step()
    path = session.save("mine")
    assert path == tmp_path / "runs" / "mine"
    assert (path / "checkpoints" / "final.pt").is_file() and (path / "metrics.csv").is_file()
    run = load_run(path)
    assert run.step == 7 and run.config.data["name"] == "lines"
    G = session.trainer.exp.sampling_network()
    for a, b in zip(G.state_dict().values(), run.generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert main(["info", str(path)]) == 0
    assert main(["sample", str(path), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert [r["name"] for r in session.runs()] == ["mine"]
    with pytest.raises(GanforgeError, match="already exists"):
        session.save("mine")
    for bad in ("../out", "", ".hidden", "a/b", 3):
        with pytest.raises(GanforgeError, match="plain folder name"):
            session.save(bad)
    session.reset()
    settings = session.load("mine")
    assert settings.data == "lines" and settings.loss == "hinge" and session.trainer.step == 7
    assert [r["step"] for r in session.history] == list(range(1, 8))
    assert _same(_params(session.trainer.exp.networks["G"]), _params(run.generator))


def test_a_failed_save_leaves_nothing(session, tmp_path, monkeypatch):
    session.step()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(session.trainer, "snapshot", broken)
    with pytest.raises(OSError):
        session.save("half")
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_loaded_run_keeps_its_data_options(session, tmp_path):
    from ganforge.config import load_config
    from ganforge.train import Trainer

    cfg = load_config("ring8-selfcond", overrides={"train.steps": 3,
                                                   "algorithm.stabilisers.self_condition_pool": 512})
    Trainer(cfg, tmp_path / "runs" / "small-ring", progress=False).fit()
    settings = session.load("small-ring")
    assert dict(settings.data_options) == {"radius": 1.0, "std": 0.01} and settings.self_condition == 50
    frame, _ = session.frame()
    assert max(abs(v) for v in frame["bounds"]) < 2  # the radius-1 ring, not the default radius 2
    assert session.configure({"data": "spiral"}).data_options == ()
    session.configure({"data": "ring8"})
    session.configure({"data_options": {"radius": 3.0}})  # the options alone rebuild the data too
    frame, _ = session.frame()
    assert max(abs(v) for v in frame["bounds"]) > 3


def test_load_refuses_runs_play_cannot_show(session, tmp_path):
    from ganforge.config import load_config
    from ganforge.train import Trainer

    cfg = load_config("digits-dcgan", overrides={"train.steps": 1, "model.width": 4})
    Trainer(cfg, tmp_path / "runs" / "dcgan", progress=False).fit()
    assert session.runs() == []
    with pytest.raises(GanforgeError, match="play rebuilds mlp gan runs, and this one is dcgan gan"):
        session.load("dcgan")
    with pytest.raises(GanforgeError, match="not a finished run"):
        session.load("missing")
    # an MLP GAN whose model holds a key play does not set is refused, naming the key
    cfg = load_config("ring8-mlp", overrides={"train.steps": 1, "model.g_hidden": [8, 8],
                                              "model.d_hidden": [8], "model.d_dropout": 0.1})
    Trainer(cfg, tmp_path / "runs" / "conditional", progress=False).fit()
    with pytest.raises(GanforgeError, match="model.d_dropout=0.1 is not what play's settings build"):
        session.load("conditional")


def test_load_and_save_stay_inside_the_runs_folder(session, tmp_path):
    """A link out of --runs is refused as the board refuses it; a dangling link is one error."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    session.step()
    session.save("real")
    (tmp_path / "runs" / "real").rename(outside / "real")
    (tmp_path / "runs" / "escape").symlink_to(outside / "real")
    with pytest.raises(GanforgeError, match="link out of the runs folder"):
        session.load("escape")
    assert session.runs() == []  # not listed either
    (tmp_path / "runs" / "dangling").symlink_to(tmp_path / "runs" / "nowhere")
    with pytest.raises(GanforgeError, match="already exists"):
        session.save("dangling")
    (tmp_path / "runs" / "dangling-out").symlink_to(outside / "nowhere")
    with pytest.raises(GanforgeError, match="link out of the runs folder"):
        session.save("dangling-out")
    assert not (outside / "nowhere").exists() and not (tmp_path / "runs" / "nowhere").exists()


def test_a_diverging_run_stops_with_a_reason_that_says_not_finite_and_how_to_fix(session):
    session.configure({"optimizer": "sgd", "lr_g": 1.0, "lr_d": 1.0})
    session.play()
    session._thread.join(timeout=60)
    assert not session.running
    assert "is not finite" in session.error and "lower lr_g and lr_d" in session.error
    frame, _ = session.frame()
    assert frame["running"] is False and frame["steps_per_second"] == 0.0 and frame["error"] == session.error
    session.configure({"optimizer": "adam", "lr_g": 1e-3, "lr_d": 1e-3})
    session.reset()
    session.play()
    time.sleep(0.3)
    session.pause()
    assert session.error is None and "error" not in session.frame()[0]  # the next success clears it


@pytest.mark.parametrize("loss", ["minimax", "non-saturating", "lsgan", "hinge", "wgan-gp"])
def test_self_conditioned_runs_draw_their_views_after_a_live_switch(session, loss):
    session.configure({"loss": loss})
    session.step()
    session.configure({"self_condition": 8})  # a live switch: the labels change with the model
    session.step()
    frame, _ = session.frame()
    assert len(frame["heatmap"]["values"]) == HEATMAP * HEATMAP and len(frame["arrows"]) == N_POINTS
    session.configure({"self_condition": 0})
    assert "heatmap" in session.frame()[0]


def test_probabilities_and_critic_values_keep_apart_in_the_metrics(session):
    session.step()
    session.configure({"loss": "wgan-gp"})
    session.step()
    rows = session.frame()[0]["metrics"]
    assert {"d_real", "d_fake"} <= rows[0].keys() and not {"c_real", "c_fake"} & rows[0].keys()
    assert {"c_real", "c_fake"} <= rows[-1].keys() and not {"d_real", "d_fake"} & rows[-1].keys()


def test_the_choices_come_from_the_registries():
    from ganforge.data import datasets_of_kind
    from ganforge.train.objectives import OBJECTIVES
    from ganforge.web.session import CHOICES, PROBABILITY_LOSSES

    assert set(CHOICES["data"]) == set(datasets_of_kind("points-2d")) >= {"ring8", "grid25", "drawn"}
    assert set(CHOICES["loss"]) == set(OBJECTIVES.names()) >= {"hinge", "wgan-gp", "r1"}
    assert {"adam", "sgd", "rmsprop", "adamw"} <= set(CHOICES["optimizer"])
    assert "lbfgs" not in CHOICES["optimizer"]
    assert set(PROBABILITY_LOSSES) == {"minimax", "non-saturating", "saturating", "r1"}


def test_a_preset_run_loads_with_its_loss_options_and_round_trips(session, tmp_path):
    """ring8-mlp trains with loss r1 (gamma 0.03): play keeps the loss and its gamma."""
    from ganforge.config import load_config
    from ganforge.train import Trainer

    cfg = load_config("ring8-mlp", overrides={"train.steps": 2, "model.g_hidden": [16, 16],
                                              "model.d_hidden": [16, 16]})
    Trainer(cfg, tmp_path / "runs" / "ring", progress=False).fit()
    settings = session.load("ring")
    assert settings.loss == "r1" and dict(settings.loss_options) == {"gamma": 0.03}
    assert settings.optimizer == "adam" and settings.lr_g == 1e-4 and settings.lr_d == 4e-4
    rebuilt = settings.to_config()
    assert rebuilt.algorithm["loss"] == {"name": "r1", "gamma": 0.03}
    assert settings_from_config(rebuilt) == settings
    session.configure({"loss": "hinge"})  # another loss does not inherit gamma
    assert session.settings.loss_options == ()
