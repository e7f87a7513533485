"""Networks for symbolic music: piano-roll phrases (N, tracks, steps, pitches) in [-1, 1], in the
onset/hold/rest encoding of :mod:`ganforge.data.pianoroll`.

* ``musegan`` (:func:`build_musegan`): the hybrid multi-track model of Dong, Hsiao, Yang and Yang
  (2018, "MuseGAN: Multi-track Sequential Generative Adversarial Networks for Symbolic Music
  Generation and Accompaniment"). The code z = [z, z_t, z_1..z_K, z_1,t..z_K,t] holds a shared
  time-independent part, a shared time-dependent part (a temporal generator G_temp maps it to one
  code per bar), and per track a private time-independent and a private time-dependent part (its
  own G_temp,k). Track k's bar b is its own bar generator G_bar,k of [z, z_t(b), z_k, z_k,t(b)]:
  transposed convolutions up in time, then to octaves, then to the 12 pitch classes of each
  octave (one kernel for every octave, so the pitch-class structure is shared). D
  (:class:`PhraseCritic`) runs 3D convolutions over (bars, steps, pitches) with the tracks as
  channels, pitch classes first, as MuseGAN's D does.
* ``crnngan`` (:func:`build_crnngan`): a recurrent GAN in the style of Mogren (2016, "C-RNN-GAN:
  Continuous recurrent neural networks with adversarial training"): an LSTM G driven by noise at
  every step writes one frame (every track's pitches) per step; D is a bidirectional LSTM over
  the frames, averaged over time.
* ``roll-lstm`` (:func:`build_roll_lstm`): the maximum-likelihood baseline, an LSTM language model
  over frames (:class:`RollLanguageModel`). Each voice at each step is one of 2P + 1 states (rest,
  onset of pitch p, hold of pitch p); the voices of a step are predicted in order (soprano first),
  each given the LSTM's state of the past frames and the voices of this step already chosen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.pianoroll import HOLD, ONSET, REST, onsets, sounding
from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, shaped
from ganforge.models.base import Discriminator, Generator, register_model


def _roll_shape(sample_shape: tuple[int, ...], model: str) -> tuple[int, ...]:
    return shaped(sample_shape, model, "piano rolls (tracks, steps, pitches)",
                  "use a music dataset (data.name=bach-chorales or music-folder)")


def _bars_of(steps: int, bars: int, model: str) -> int:
    """Steps per bar, when ``bars`` divides ``steps`` into bars of a multiple of 4 steps."""
    bars = positive_int(bars, "bars", model)
    if steps % bars or (steps // bars) % 4:
        raise GanforgeError(
            f"model {model!r}: {steps} steps do not split into {bars} bars of a multiple of 4 steps",
            "set model.bars to the data's bars (data.bars, 4 by default)",
        )
    return steps // bars


#: the bias of a generator's last layer at initialisation: tanh(-2) = -0.96, every cell at rest
SILENT_BIAS = -2.0


def _bias(value: object, model: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GanforgeError(f"model {model!r}: start_bias={value!r} is not a finite number",
                            "set model.start_bias to e.g. -2 (every cell starts at rest) or 0")
    return float(value)


def start_silent(layer: nn.Module, bias: float = SILENT_BIAS) -> None:
    """Start ``layer`` (a generator's last, before tanh) silent: a chorale's roll is ~97 % rests,
    and with a zero bias every cell would start near HOLD (0), that is sounding, so the GAN would
    spend its first thousands of steps learning silence."""
    with torch.no_grad():
        layer.bias.fill_(bias)


# --------------------------------------------------------------------------- MuseGAN
class TemporalGenerator(nn.Module):
    """G_temp: one code (``z_dim``) to one code per bar (``bars`` x ``z_dim``)."""

    def __init__(self, z_dim: int, bars: int, hidden: int = 256) -> None:
        super().__init__()
        self.bars, self.z_dim = bars, z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, bars * z_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.bars, self.z_dim)


class BarGenerator(nn.Module):
    """G_bar: a bar's code to one track's bar (steps_per_bar, pitches) in [-1, 1]: a linear layer
    to a quarter of the steps, two stride-2 transposed convolutions in time, one to the octaves
    and one (kernel 12, stride 12) to the pitch classes of each octave."""

    def __init__(self, in_dim: int, steps_per_bar: int, octaves: int, width: int = 256,
                 start_bias: float = SILENT_BIAS) -> None:
        super().__init__()
        self.width, self.quarter = width, steps_per_bar // 4

        def up(c_in: int, c_out: int, kernel: tuple[int, int]) -> list[nn.Module]:
            return [nn.ConvTranspose2d(c_in, c_out, kernel, stride=kernel), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.project = nn.Sequential(
            nn.Linear(in_dim, width * self.quarter), nn.BatchNorm1d(width * self.quarter), nn.ReLU()
        )
        self.net = nn.Sequential(
            *up(width, width // 2, (2, 1)),
            *up(width // 2, width // 4, (2, 1)),
            *up(width // 4, width // 8, (1, octaves)),
            nn.ConvTranspose2d(width // 8, 1, (1, 12), stride=(1, 12)),
            nn.Tanh(),
        )
        start_silent(self.net[-2], start_bias)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = self.project(code).view(-1, self.width, self.quarter, 1)
        return self.net(h).squeeze(1)  # (N, steps_per_bar, pitches)


class MuseGenerator(Generator):
    """MuseGAN's hybrid generator (see the module docstring); z_dim = (2 + 2 tracks) * ``part_dim``."""

    def __init__(self, out_shape: tuple[int, int, int], bars: int, part_dim: int = 32, width: int = 256,
                 start_bias: float = SILENT_BIAS) -> None:
        super().__init__()
        tracks, steps, pitches = out_shape
        self.out_shape, self.tracks, self.bars, self.part_dim = tuple(out_shape), tracks, bars, part_dim
        self.z_dim = (2 + 2 * tracks) * part_dim
        self.shared_temporal = TemporalGenerator(part_dim, bars)
        self.private_temporal = nn.ModuleList(TemporalGenerator(part_dim, bars) for _ in range(tracks))
        self.bar_generators = nn.ModuleList(
            BarGenerator(4 * part_dim, steps // bars, pitches // 12, width, start_bias) for _ in range(tracks)
        )

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(shared (N, d), shared temporal (N, d), private (N, K, d), private temporal (N, K, d))."""
        d, k = self.part_dim, self.tracks
        return (
            z[:, :d],
            z[:, d : 2 * d],
            z[:, 2 * d : (2 + k) * d].view(-1, k, d),
            z[:, (2 + k) * d :].view(-1, k, d),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, bars = len(z), self.bars
        shared, shared_t, private, private_t = self.split(z)
        over_bars = self.shared_temporal(shared_t)  # (N, bars, d)
        tracks = []
        for k, bar_generator in enumerate(self.bar_generators):
            code = torch.cat(
                [
                    shared.unsqueeze(1).expand(-1, bars, -1),
                    over_bars,
                    private[:, k].unsqueeze(1).expand(-1, bars, -1),
                    self.private_temporal[k](private_t[:, k]),
                ],
                dim=2,
            )
            tracks.append(bar_generator(code.reshape(n * bars, -1)).reshape(n, -1, self.out_shape[2]))
        return torch.stack(tracks, dim=1)  # (N, tracks, bars * steps_per_bar, pitches)


class PhraseCritic(Discriminator):
    """MuseGAN-style D: 3D convolutions over (bars, steps in a bar, pitches), tracks as channels:
    the 12 pitch classes of each octave, the octaves, time within the bar (by 4, then to one
    cell) and across the bars; LeakyReLU, no normalisation (WGAN-GP's critic)."""

    def __init__(self, in_shape: tuple[int, int, int], bars: int, width: int = 128) -> None:
        super().__init__()
        tracks, steps, pitches = in_shape
        self.in_shape, self.bars, self.feature_dim = tuple(in_shape), bars, 2 * width
        spb, octaves = steps // bars, pitches // 12

        def conv(c_in: int, c_out: int, kernel: tuple[int, int, int]) -> list[nn.Module]:
            return [nn.Conv3d(c_in, c_out, kernel, stride=kernel), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *conv(tracks, width // 2, (1, 1, 12)),
            *conv(width // 2, width, (1, 1, octaves)),
            *conv(width, width, (1, 4, 1)),
            *conv(width, 2 * width, (1, spb // 4, 1)),
            *conv(2 * width, 2 * width, (bars, 1, 1)),
        )
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        n, k, steps, pitches = x.shape
        return self.net(x.reshape(n, k, self.bars, steps // self.bars, pitches)).flatten(1)


@register_model("musegan")
def build_musegan(sample_shape: tuple[int, ...], num_classes: int | None = None, *, bars: int = 4,
                  part_dim: int = 32, g_width: int = 256, d_width: int = 128,
                  start_bias: float = SILENT_BIAS) -> tuple[MuseGenerator, PhraseCritic]:
    """MuseGAN's hybrid G and its D for phrases ``sample_shape`` (tracks, steps, pitches) of
    ``bars`` bars; the pitch count must be whole octaves; G's last bias starts at ``start_bias``
    (:func:`start_silent`). ``num_classes`` is ignored."""
    tracks, steps, pitches = _roll_shape(sample_shape, "musegan")
    _bars_of(steps, bars, "musegan")
    if pitches % 12:
        raise GanforgeError(
            f"model 'musegan': {pitches} pitches are not whole octaves",
            "use a pitch range of a multiple of 12 (data.pitches=48)",
        )
    part_dim = positive_int(part_dim, "part_dim", "musegan")
    g_width = positive_int(g_width, "g_width", "musegan")
    d_width = positive_int(d_width, "d_width", "musegan")
    if g_width % 8 or d_width % 2:
        raise GanforgeError(
            "model 'musegan': g_width must be a multiple of 8 and d_width of 2",
            "set e.g. model.g_width=256, model.d_width=128",
        )
    shape = (tracks, steps, pitches)
    G = MuseGenerator(shape, bars, part_dim, g_width, _bias(start_bias, "musegan"))
    return G, PhraseCritic(shape, bars, d_width)


# --------------------------------------------------------------------------- C-RNN-GAN
class RecurrentGenerator(Generator):
    """An LSTM driven by ``noise_dim`` fresh noise a step; each step's output is a frame (tracks x
    pitches) in [-1, 1]. z is the flat (steps x noise_dim) noise."""

    def __init__(self, out_shape: tuple[int, int, int], noise_dim: int = 16, hidden: int = 256,
                 layers: int = 2, start_bias: float = SILENT_BIAS) -> None:
        super().__init__()
        tracks, steps, pitches = out_shape
        self.out_shape, self.noise_dim, self.z_dim = tuple(out_shape), noise_dim, steps * noise_dim
        self.lstm = nn.LSTM(noise_dim, hidden, layers, batch_first=True)
        self.frame = nn.Linear(hidden, tracks * pitches)
        start_silent(self.frame, start_bias)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        tracks, steps, pitches = self.out_shape
        h, _ = self.lstm(z.view(len(z), steps, self.noise_dim))
        return torch.tanh(self.frame(h)).view(len(z), steps, tracks, pitches).transpose(1, 2)


class RecurrentCritic(Discriminator):
    """A bidirectional LSTM over the frames; its outputs averaged over time are the features."""

    def __init__(self, in_shape: tuple[int, int, int], hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        tracks, _, pitches = in_shape
        self.in_shape, self.feature_dim = tuple(in_shape), 2 * hidden
        self.lstm = nn.LSTM(tracks * pitches, hidden, layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.transpose(1, 2).flatten(2)  # (N, steps, tracks * pitches)
        # cuDNN's LSTM has no double backward, which a gradient penalty needs
        with torch.backends.cudnn.flags(enabled=False):
            h, _ = self.lstm(frames)
        return h.mean(dim=1)


@register_model("crnngan")
def build_crnngan(sample_shape: tuple[int, ...], num_classes: int | None = None, *, noise_dim: int = 16,
                  g_hidden: int = 256, d_hidden: int = 128, layers: int = 2,
                  start_bias: float = SILENT_BIAS) -> tuple[RecurrentGenerator, RecurrentCritic]:
    """The recurrent G and D for phrases ``sample_shape`` (tracks, steps, pitches)."""
    shape = _roll_shape(sample_shape, "crnngan")
    noise_dim = positive_int(noise_dim, "noise_dim", "crnngan")
    layers = positive_int(layers, "layers", "crnngan")
    g_hidden = positive_int(g_hidden, "g_hidden", "crnngan")
    d_hidden = positive_int(d_hidden, "d_hidden", "crnngan")
    G = RecurrentGenerator(shape, noise_dim, g_hidden, layers, _bias(start_bias, "crnngan"))
    return G, RecurrentCritic(shape, d_hidden, layers)


# --------------------------------------------------------------------------- the MLE baseline
def roll_to_states(x: torch.Tensor) -> torch.Tensor:
    """Per voice and step, the state of a roll batch (N, K, T, P): 0 rest, 1 + p the onset of
    pitch p, 1 + P + p a hold of pitch p; with several notes in a voice, its highest onset (else
    its highest sounding pitch). Cells are read by :mod:`ganforge.data.pianoroll`'s thresholds."""
    pitches = x.shape[-1]
    on, start = sounding(x), onsets(x)
    ladder = torch.arange(1, pitches + 1, device=x.device)

    def highest(mask: torch.Tensor) -> torch.Tensor:
        return (mask * ladder).argmax(-1)

    states = torch.zeros(x.shape[:3], dtype=torch.long, device=x.device)
    states = torch.where(on.any(-1), 1 + pitches + highest(on), states)
    return torch.where(start.any(-1), 1 + highest(start), states)


def states_to_roll(states: torch.Tensor, pitches: int) -> torch.Tensor:
    """The roll (N, K, T, P) of voice states (N, K, T) (see :func:`roll_to_states`)."""
    roll = torch.full((*states.shape, pitches), REST, device=states.device)
    onset, hold = (states >= 1) & (states <= pitches), states > pitches
    pitch = torch.where(hold, states - 1 - pitches, states - 1).clamp(min=0)
    value = torch.where(
        onset, torch.tensor(ONSET, device=states.device), torch.tensor(HOLD, device=states.device)
    )
    sounding = onset | hold
    roll.scatter_(
        -1,
        pitch.unsqueeze(-1),
        torch.where(sounding, value, torch.tensor(REST, device=states.device)).unsqueeze(-1),
    )
    return roll


class RollLanguageModel(nn.Module):
    """p(x) = prod_t prod_k p(s_t,k | s_<t, s_t,<k): an LSTM over the past frames' voice states
    (embedded and concatenated), and per voice k a linear read-out of the LSTM state and the
    embeddings of this step's voices before k (see the module docstring)."""

    def __init__(
        self, out_shape: tuple[int, int, int], embed: int = 32, hidden: int = 256, layers: int = 2
    ) -> None:
        super().__init__()
        tracks, steps, pitches = out_shape
        self.out_shape, self.states = tuple(out_shape), 2 * pitches + 1
        self.embed = nn.Embedding(self.states + 1, embed)  # the last index starts a phrase
        self.lstm = nn.LSTM(tracks * embed, hidden, layers, batch_first=True)
        self.readout = nn.ModuleList(nn.Linear(hidden + k * embed, self.states) for k in range(tracks))

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (N, K, T, 2P + 1) of the states (N, K, T)."""
        n, tracks, steps = states.shape
        start = torch.full((n, tracks, 1), self.states, dtype=torch.long, device=states.device)
        past = self.embed(torch.cat([start, states[:, :, :-1]], dim=2)).permute(0, 2, 1, 3)  # (N, T, K, E)
        h, _ = self.lstm(past.flatten(2))
        now = self.embed(states).permute(0, 2, 1, 3)
        return torch.stack(
            [head(torch.cat([h, now[:, :, :k].flatten(2)], dim=2)) for k, head in enumerate(self.readout)],
            dim=1,
        )

    def nll(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean negative log-likelihood per voice and step in nats, accuracy) of rolls ``x``."""
        states = roll_to_states(x)
        logits = self.logits(states)
        loss = F.cross_entropy(logits.flatten(0, 2), states.flatten())
        return loss, (logits.argmax(-1) == states).float().mean()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        batch_size: int = 500,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``n`` rolls (CPU), drawn step by step and voice by voice with ``generator``."""
        return (
            torch.cat(
                [
                    self._sample(min(batch_size, n - i), generator, temperature)
                    for i in range(0, n, batch_size)
                ]
            )
            if n
            else torch.empty(0, *self.out_shape)
        )

    def _sample(self, n: int, generator: torch.Generator | None, temperature: float) -> torch.Tensor:
        tracks, steps, pitches = self.out_shape
        device = self.embed.weight.device
        previous = torch.full((n, tracks), self.states, dtype=torch.long, device=device)
        state, out = None, []
        for _ in range(steps):
            h, state = self.lstm(self.embed(previous).flatten(1).unsqueeze(1), state)
            h, chosen = h[:, 0], []
            for head in self.readout:
                now = self.embed(torch.stack(chosen, 1)).flatten(1) if chosen else h.new_zeros(n, 0)
                probs = torch.softmax(head(torch.cat([h, now], dim=1)).float().cpu() / temperature, dim=1)
                chosen.append(torch.multinomial(probs, 1, generator=generator)[:, 0].to(device))
            previous = torch.stack(chosen, 1)
            out.append(previous)
        return states_to_roll(torch.stack(out, dim=2), pitches).cpu()


@register_model("roll-lstm")
def build_roll_lstm(sample_shape: tuple[int, ...], num_classes: int | None = None, *, embed: int = 32,
                    hidden: int = 256, layers: int = 2) -> tuple[RollLanguageModel]:
    """The LSTM language model over frames of phrases ``sample_shape`` (tracks, steps, pitches)."""
    shape = _roll_shape(sample_shape, "roll-lstm")
    embed, hidden = positive_int(embed, "embed", "roll-lstm"), positive_int(hidden, "hidden", "roll-lstm")
    return (RollLanguageModel(shape, embed, hidden, positive_int(layers, "layers", "roll-lstm")),)
