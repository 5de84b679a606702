"""``minirocket``: MiniRocket features (Dempster, Schmidt & Webb, KDD 2021) and a ridge classifier
whose alpha is chosen by leave-one-out error on the training split, for time-series
classification.

Why our own ~150 lines of torch rather than aeon's or sktime's transform: installing aeon 1.6
here would downgrade numpy, pandas, numba and llvmlite under every other component (it pins
numpy < 2.4, pandas < 3.1, numba < 0.64), and sktime brings a similar stack. The transform is
small and fully specified by the paper, and in torch it is one batched ``conv1d`` per dilation
(no numba compile on first use). What the paper fixes, and this follows:

* 84 kernels of length 9: weights -1, with 2 at three of the nine positions (all C(9,3) choices);
* dilations ``floor(2**e)`` for e evenly spaced in ``[0, log2((L-1)/8)]``, at most 32 per kernel,
  the ~10,000 features shared out among them;
* biases: quantiles of the kernel's output on one random training series, the quantile levels
  taken from the low-discrepancy sequence ``(i * golden ratio) mod 1``;
* zero padding on every other (kernel, dilation) pair; features are PPV, the proportion of
  outputs above the bias (computed over the unpadded part for the pairs without padding);
* multivariate input: each (dilation, kernel) pair sums its output over a random subset of
  ``floor(2**u)`` channels, ``u ~ U(0, log2(min(C, 9) + 1))``;
* classifier: standardised features, ridge regression onto +-1 class codes (one-vs-rest),
  alpha from ``logspace(-3, 3, 10)`` by leave-one-out error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import itertools
import math

import torch
import torch.nn.functional as F

from mona_kit.api import ConfigError, config, option

from .cnn import check_sequence_classification
from .common import FitStage, ReferenceMethod, ReferenceModel, check_positive_grid, split_tensors
from .ridge import RidgePath, best_loo_alpha

if TYPE_CHECKING:
    from mona_kit.api import Session

KERNEL_LENGTH = 9
NUM_KERNELS = 84  # C(9, 3)
GOLDEN = (math.sqrt(5) + 1) / 2
#: Series per feature block: bounds memory at CHUNK x channels x 84 x length floats.
CHUNK = 128


@config
class MiniRocketConfig:
    num_features: int = option(10_000, min=NUM_KERNELS, help="features (rounded down to a multiple of 84)")
    max_dilations: int = option(32, min=1, help="dilations per kernel at most")
    # finite=False: check_positive_grid below checks finiteness too, in a message with an example.
    alphas: tuple[float, ...] = option(
        tuple(float(f"{10 ** (-3 + 6 * i / 9):.4g}") for i in range(10)), finite=False,
        help="ridge alphas, a non-empty list of positive numbers; the best leave-one-out error wins",
    )

    def __attrs_post_init__(self) -> None:
        check_positive_grid("minirocket", "alphas", self.alphas, "0.001,1,1000")


def kernel_weights() -> torch.Tensor:
    """``[84, 9]``: -1 everywhere, 2 at each choice of three positions."""
    w = -torch.ones(NUM_KERNELS, KERNEL_LENGTH)
    for k, positions in enumerate(itertools.combinations(range(KERNEL_LENGTH), 3)):
        w[k, list(positions)] = 2.0
    return w


def dilation_plan(length: int, num_features: int, max_dilations: int) -> tuple[list[int], list[int]]:
    """Dilations and how many features (bias quantiles) each gives per kernel."""
    per_kernel = num_features // NUM_KERNELS
    used = min(per_kernel, max_dilations)
    multiplier = per_kernel / used
    top = math.log2((length - 1) / (KERNEL_LENGTH - 1))
    raw = torch.floor(2.0 ** torch.linspace(0, top, used, dtype=torch.float64)).long()
    dilations, counts = torch.unique(raw, return_counts=True)
    share = (counts.double() * multiplier).long().tolist()
    for i in itertools.islice(itertools.cycle(range(len(share))), per_kernel - sum(share)):
        share[i] += 1
    return dilations.tolist(), share


class MiniRocket(ReferenceModel):
    def __init__(self, spec, cfg: MiniRocketConfig):
        super().__init__(spec.input_shape, spec.output_shape)
        channels, length = spec.input_shape
        self.cfg = cfg
        self.dilations, self.share = dilation_plan(length, cfg.num_features, cfg.max_dilations)
        total = NUM_KERNELS * sum(self.share)
        self.register_buffer("kernels", kernel_weights().unsqueeze(1), persistent=False)  # fixed, not state
        # Which channels each (dilation, kernel) pair sums: drawn once from the run's seed.
        mask = torch.zeros(len(self.dilations), NUM_KERNELS, channels)
        top = math.log2(min(channels, KERNEL_LENGTH) + 1)
        for d in range(len(self.dilations)):
            for k in range(NUM_KERNELS):
                n = int(2 ** (torch.rand(()).item() * top))
                mask[d, k, torch.randperm(channels)[: max(1, min(n, channels))]] = 1.0
        self.register_buffer("channel_mask", mask)
        self.register_buffer("biases", torch.zeros(total))
        self.register_buffer("weight", torch.zeros(spec.output_shape[0], total))
        self.register_buffer("bias", torch.zeros(spec.output_shape[0]))

    def responses(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """``[B, 84, L]``: every kernel at dilation ``self.dilations[d]`` (zero-padded), summed over its channels."""
        b, c, length = x.shape
        dil = self.dilations[d]
        out = F.conv1d(x.reshape(b * c, 1, length), self.kernels.to(x.dtype), dilation=dil, padding=4 * dil)
        return torch.einsum("bckl,kc->bkl", out.reshape(b, c, NUM_KERNELS, length), self.channel_mask[d].to(x.dtype))

    def bias_blocks(self):
        """``(d, biases [84, q])`` per dilation, in feature order."""
        start = 0
        for d, q in enumerate(self.share):
            yield d, self.biases[start : start + NUM_KERNELS * q].view(NUM_KERNELS, q)
            start += NUM_KERNELS * q

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, features]``: PPV of every (dilation, kernel, bias)."""
        blocks = []
        for d, biases in self.bias_blocks():
            r = self.responses(x, d)
            pad = 4 * self.dilations[d]
            ppv = torch.empty(len(x), NUM_KERNELS, biases.shape[1], device=x.device)
            padded = torch.tensor([(d + k) % 2 == 0 for k in range(NUM_KERNELS)], device=x.device)
            for sel, part in ((padded, r), (~padded, r[..., pad : r.shape[-1] - pad])):
                ppv[:, sel] = (part[:, sel, None, :] > biases[sel][None, :, :, None]).float().mean(-1)
            blocks.append(ppv.flatten(1))
        return torch.cat(blocks, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        feats = torch.cat([self.features(part) for part in x.split(CHUNK)])
        return feats @ self.weight.T + self.bias

    @torch.no_grad()
    def fit_biases(self, x: torch.Tensor, generator: torch.Generator) -> None:
        levels = ((torch.arange(1, self.biases.numel() + 1, dtype=torch.float64) * GOLDEN) % 1.0).to(x.device)
        start = 0
        for d, q in enumerate(self.share):
            pick = torch.randint(len(x), (NUM_KERNELS,), generator=generator).to(x.device)
            r = self.responses(x[pick], d)  # [84 series, 84 kernels, L]: kernel k reads series k
            own = r[torch.arange(NUM_KERNELS), torch.arange(NUM_KERNELS)].double().sort(-1).values
            lv = levels[start : start + NUM_KERNELS * q].view(NUM_KERNELS, q)
            pos = lv * (own.shape[-1] - 1)  # linear interpolation between order statistics (numpy's default)
            lo = pos.floor().long()
            hi = (lo + 1).clamp_max(own.shape[-1] - 1)
            frac = pos - lo
            values = own.gather(1, lo) * (1 - frac) + own.gather(1, hi) * frac
            self.biases[start : start + NUM_KERNELS * q] = values.flatten().to(self.biases.dtype)
            start += NUM_KERNELS * q

    @torch.no_grad()
    def fit(self, session: Session) -> dict:
        x, y = split_tensors(session, "train")
        self.fit_biases(x.float(), torch.Generator().manual_seed(session.config.seed))
        feats = torch.cat([self.features(part) for part in x.float().split(CHUNK)])
        classes = self.weight.shape[0]
        codes = F.one_hot(y.long(), classes) if y.dim() == 1 else y  # multilabel targets are already 0/1
        path = RidgePath(feats, 2.0 * codes.double() - 1.0)
        alpha = best_loo_alpha(path, list(self.cfg.alphas))
        fit = path.fit(alpha)
        self.weight.copy_(fit.weight)
        self.bias.copy_(fit.bias)
        return {"alpha": alpha, "features": feats.shape[1], "dilations": len(self.dilations)}


def check_series_length(spec) -> None:
    if spec.input_shape[-1] < KERNEL_LENGTH:
        raise ConfigError(
            f"minirocket needs series of at least {KERNEL_LENGTH} steps; task {spec.name!r} has {spec.input_shape[-1]}."
        )


class MiniRocketMethod(ReferenceMethod):
    model_name = "minirocket"

    def __init__(self, cfg: MiniRocketConfig):
        self.cfg = cfg

    def check(self, session: Session) -> None:
        check_sequence_classification(session.spec, "minirocket")
        check_series_length(session.spec)
        if self.cfg.num_features < NUM_KERNELS:
            raise ConfigError(f"minirocket needs num_features >= {NUM_KERNELS} (one per kernel), got {self.cfg.num_features}.")

    def make_model(self, session: Session) -> MiniRocket:
        return MiniRocket(session.spec, self.cfg)

    def stages(self, session: Session):
        return [FitStage()]
