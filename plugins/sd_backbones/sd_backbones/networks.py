"""The networks behind sd-backbones' specs (imports torch; loaded by the build functions).

Every network maps a ``(B, 1, S, S)`` float batch to a ``(B, embedding_dim)`` embedding. Rows of
a spectrogram image are frequency (height), columns are time (width). Options are checked in
:mod:`sd_backbones.plugin` before these classes are built.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


class CnnLight(nn.Module):
    """Conv stages (conv → BatchNorm → act → max-pool 2), an adaptive average pool to a fixed
    grid, then flatten → dropout → linear layers with the activation between them."""

    def __init__(self, embedding_dim: int, kernels: list[int], channels: list[int],
                 hidden: list[int], dropout: float, activation: str, pool_size: int) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        cin = 1
        for k, c in zip(kernels, channels):
            layers += [nn.Conv2d(cin, c, k, padding="same"), nn.BatchNorm2d(c), act(), nn.MaxPool2d(2)]
            cin = c
        layers.append(nn.AdaptiveAvgPool2d(pool_size))
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        width = cin * pool_size * pool_size
        for h in hidden:
            head += [nn.Linear(width, h), act()]
            width = h
        head.append(nn.Linear(width, embedding_dim))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ColumnTransformer(nn.Module):
    """A pre-norm Transformer encoder whose tokens are the image's time columns.

    ``patch`` adjacent columns (S × patch values) are projected to one ``d_model`` token; a
    learned positional embedding is added (sized at build time for ``S / patch`` tokens, plus one
    for the cls token). The tokens go through the encoder and a final LayerNorm, are pooled (mean,
    or the cls token) and projected to the embedding.
    """

    def __init__(self, embedding_dim: int, image_size: int, d_model: int, layers: int, heads: int,
                 ff_dim: int, dropout: float, pooling: str, patch: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.patch = patch
        self.pooling = pooling
        self.proj = nn.Linear(image_size * patch, d_model)
        n_tokens = image_size // patch + (1 if pooling == "cls" else 0)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        if self.cls is not None:
            nn.init.trunc_normal_(self.cls, std=0.02)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=ff_dim, dropout=dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.out = nn.Linear(d_model, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != 1 or h != self.image_size or w != self.image_size:
            raise ValueError(
                f"transformer backbone was built for (B, 1, {self.image_size}, {self.image_size}) "
                f"images, got {tuple(x.shape)}"
            )
        # (B, H, W) → (B, W, H): one row per time column; merge `patch` adjacent columns
        tokens = x[:, 0].transpose(1, 2).reshape(b, w // self.patch, self.patch * h)
        z = self.proj(tokens)
        if self.cls is not None:
            z = torch.cat([self.cls.expand(b, -1, -1), z], dim=1)
        z = self.encoder(self.drop(z + self.pos))
        z = z[:, 0] if self.cls is not None else z.mean(dim=1)
        return self.out(z)


class EEGNet(nn.Module):
    """EEGNet (Lawhern et al. 2018) adapted to one-channel spectrogram images.

    The frequency rows play the role of EEGNet's electrodes: a temporal conv (1 × kernel) along
    the time axis, a depthwise conv spanning the whole height (``depth`` frequency filters per
    temporal filter), BatchNorm, ELU, average pool (1, 4), dropout; then a separable conv
    (depthwise 1 × kernel//2, made odd, + pointwise to ``f2``), BatchNorm, ELU, an adaptive average
    pool to 4 time steps (what EEGNet's pool of 8 gives for 128 samples), dropout and a linear layer
    to the embedding. The max-norm weight constraints of the paper are left out.
    """

    TIME_STEPS = 4

    def __init__(self, embedding_dim: int, image_size: int, f1: int, depth: int, f2: int,
                 kernel: int, dropout: float) -> None:
        super().__init__()
        d = f1 * depth
        sep = max(3, (kernel // 2) | 1)
        self.block1 = nn.Sequential(
            nn.Conv2d(1, f1, (1, kernel), padding=(0, kernel // 2), bias=False),
            nn.BatchNorm2d(f1),
            nn.Conv2d(f1, d, (image_size, 1), groups=f1, bias=False),
            nn.BatchNorm2d(d),
            nn.ELU(),
            nn.AvgPool2d((1, 4)),
            nn.Dropout(dropout),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(d, d, (1, sep), padding=(0, sep // 2), groups=d, bias=False),
            nn.Conv2d(d, f2, 1, bias=False),
            nn.BatchNorm2d(f2),
            nn.ELU(),
            nn.AdaptiveAvgPool2d((1, self.TIME_STEPS)),
            nn.Dropout(dropout),
        )
        self.out = nn.Linear(f2 * self.TIME_STEPS, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block2(self.block1(x)).flatten(1))


class BasicBlock(nn.Module):
    """Two 3 × 3 conv/BN layers with a residual connection (1 × 1 conv/BN when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 for one-channel images: stem, four stages of two BasicBlocks (widths ×1, ×2, ×4,
    ×8 of ``width``, strides 1, 2, 2, 2), global average pool, linear to the embedding."""

    def __init__(self, embedding_dim: int, width: int, stem: str) -> None:
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(1, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(1, width, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        stages = []
        cin = width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, embedding_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))
