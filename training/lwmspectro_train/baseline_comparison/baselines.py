"""Baseline classifiers trained from scratch on 1-channel T x K spectrograms.

The architectures are written here in plain torch because the torchvision wheel from
the registry does not import beside the CPU torch 2.13 wheel this project pins, and no
other torchvision build is reachable offline. ResNet-18, EfficientNet-B0 and
MobileNet-V3 (small) follow torchvision's layer layout and parameter names exactly, so a
user who has torchvision's ImageNet state dicts can load them with `load_pretrained`
(the 3-channel stem is summed to one channel; the classifier is left at its fresh
initialisation). No ImageNet weights ship with the project, so by default every baseline
starts from random weights.

Every model takes a (B, T, K) batch and returns (B, n_classes) logits. `width` scales
every channel count (1.0 is the published size; tests use a fraction to stay fast).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn


def _divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10 % below it
    (torchvision's rule, kept so scaled widths match its models)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


def _conv_bn_act(c_in, c_out, kernel=3, stride=1, groups=1, act=nn.ReLU, bn_eps=1e-5, bn_momentum=0.1):
    """Conv, BatchNorm, activation as one Sequential (keys .0 and .1, as torchvision names them)."""
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=bn_eps, momentum=bn_momentum),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class _SpectrogramInput(nn.Module):
    """Adds the channel axis: (B, T, K) -> (B, 1, T, K)."""

    def forward(self, x):
        return x.unsqueeze(1) if x.dim() == 3 else x


class WuSTFTCNN(nn.Module):
    """STFT-spectrogram CNN after Wu, Zhong and Chen (ICCC 2021, ref. 7 of the paper).

    Their classifier is a plain stack of convolution / pooling stages followed by fully
    connected layers; the LWM-Spectro paper re-implements it without giving widths, so
    the widths here (16-32-64-128, FC 128, dropout 0.5) are ours."""

    def __init__(self, n_classes: int, width: float = 1.0):
        super().__init__()
        chans = [_scaled(c, width) for c in (16, 32, 64, 128)]
        stages, c_in = [], 1
        for c in chans:
            stages += [_conv_bn_act(c_in, c), nn.MaxPool2d(2)]
            c_in = c
        self.input = _SpectrogramInput()
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(4))
        hidden = _scaled(128, width)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * 16, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(self.input(x)))


class KojimaDeepCNN(nn.Module):
    """Deep CNN for joint SNR and Doppler classification from spectrogram images, after
    Kojima et al. (IEEE Trans. Commun. 2021, ref. 6 of the paper): VGG-style pairs of 3x3
    convolutions with batch normalisation and max pooling, then fully connected layers.
    Stage widths 32-64-128-128-256 and FC 256 are our reading of that design."""

    def __init__(self, n_classes: int, width: float = 1.0):
        super().__init__()
        stages, c_in = [], 1
        for c in (_scaled(c, width) for c in (32, 64, 128, 128, 256)):
            stages += [_conv_bn_act(c_in, c), _conv_bn_act(c, c), nn.MaxPool2d(2)]
            c_in = c
        self.input = _SpectrogramInput()
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1))
        hidden = _scaled(256, width)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(hidden, n_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(self.input(x)))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions and an identity or 1x1 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al., ref. 14) with a 1-channel stem."""

    def __init__(self, n_classes: int, width: float = 1.0):
        super().__init__()
        chans = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.input = _SpectrogramInput()
        self.conv1 = nn.Conv2d(1, chans[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(chans[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = chans[0]
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c)))
            c_in = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.input(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al.) with torchvision's parameter names fc1 / fc2."""

    def __init__(self, channels: int, squeeze: int, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = act()
        self.scale_activation = gate()

    def forward(self, x):
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class StochasticDepth(nn.Module):
    """Drops the residual branch of whole samples with probability p while training
    (torchvision.ops.stochastic_depth, mode "row", which we cannot import)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class MBConv(nn.Module):
    """EfficientNet inverted bottleneck: expand, depthwise, squeeze-excite, project."""

    def __init__(self, c_in, c_out, expand, kernel, stride, drop_p):
        super().__init__()
        expanded = _divisible(c_in * expand)
        layers = []
        if expanded != c_in:
            layers.append(_conv_bn_act(c_in, expanded, 1, act=nn.SiLU))
        layers += [
            _conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=nn.SiLU),
            SqueezeExcitation(expanded, max(1, c_in // 4), act=nn.SiLU),
            _conv_bn_act(expanded, c_out, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop_p)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.block(x)
        return x + self.stochastic_depth(out) if self.residual else out


class EfficientNetB0(nn.Module):
    """EfficientNet-B0 (Tan and Le, ref. 15) with a 1-channel stem."""

    # expand ratio, kernel, stride, in, out, repeats (the B0 table)
    STAGES = (
        (1, 3, 1, 32, 16, 1),
        (6, 3, 2, 16, 24, 2),
        (6, 5, 2, 24, 40, 2),
        (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3),
        (6, 5, 2, 112, 192, 4),
        (6, 3, 1, 192, 320, 1),
    )

    def __init__(self, n_classes: int, width: float = 1.0, stochastic_depth: float = 0.2):
        super().__init__()
        self.input = _SpectrogramInput()
        total = sum(s[-1] for s in self.STAGES)
        features = [_conv_bn_act(1, _divisible(32 * width), 3, 2, act=nn.SiLU)]
        block_id = 0
        for expand, kernel, stride, c_in, c_out, repeats in self.STAGES:
            c_in, c_out = _divisible(c_in * width), _divisible(c_out * width)
            stage = []
            for r in range(repeats):
                stage.append(
                    MBConv(
                        c_in if r == 0 else c_out,
                        c_out,
                        expand,
                        kernel,
                        stride if r == 0 else 1,
                        stochastic_depth * block_id / total,
                    )
                )
                block_id += 1
            features.append(nn.Sequential(*stage))
        last_in = _divisible(320 * width)
        features.append(_conv_bn_act(last_in, 4 * last_in, 1, act=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * last_in, n_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(self.input(x))), 1))


class InvertedResidual(nn.Module):
    """MobileNet-V3 block: optional expansion, depthwise, optional squeeze-excite, projection."""

    _BN: ClassVar[dict] = dict(bn_eps=1e-3, bn_momentum=0.01)

    def __init__(self, c_in, kernel, expanded, c_out, use_se, hard_swish, stride):
        super().__init__()
        act = nn.Hardswish if hard_swish else nn.ReLU
        layers = []
        if expanded != c_in:
            layers.append(_conv_bn_act(c_in, expanded, 1, act=act, **self._BN))
        layers.append(_conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=act, **self._BN))
        if use_se:
            layers.append(SqueezeExcitation(expanded, _divisible(expanded // 4), gate=nn.Hardsigmoid))
        layers.append(_conv_bn_act(expanded, c_out, 1, act=None, **self._BN))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV3Small(nn.Module):
    """MobileNet-V3 small (Howard et al., ref. 16) with a 1-channel stem."""

    # in, kernel, expanded, out, squeeze-excite, hard-swish, stride (the "small" table)
    BLOCKS = (
        (16, 3, 16, 16, True, False, 2),
        (16, 3, 72, 24, False, False, 2),
        (24, 3, 88, 24, False, False, 1),
        (24, 5, 96, 40, True, True, 2),
        (40, 5, 240, 40, True, True, 1),
        (40, 5, 240, 40, True, True, 1),
        (40, 5, 120, 48, True, True, 1),
        (48, 5, 144, 48, True, True, 1),
        (48, 5, 288, 96, True, True, 2),
        (96, 5, 576, 96, True, True, 1),
        (96, 5, 576, 96, True, True, 1),
    )

    def __init__(self, n_classes: int, width: float = 1.0):
        super().__init__()
        self.input = _SpectrogramInput()
        bn = InvertedResidual._BN
        features = [_conv_bn_act(1, _divisible(16 * width), 3, 2, act=nn.Hardswish, **bn)]
        for c_in, kernel, expanded, c_out, use_se, hs, stride in self.BLOCKS:
            features.append(
                InvertedResidual(
                    _divisible(c_in * width),
                    kernel,
                    _divisible(expanded * width),
                    _divisible(c_out * width),
                    use_se,
                    hs,
                    stride,
                )
            )
        last_in = _divisible(96 * width)
        features.append(_conv_bn_act(last_in, 6 * last_in, 1, act=nn.Hardswish, **bn))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = _divisible(1024 * width)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last_in, hidden), nn.Hardswish(inplace=True), nn.Dropout(0.2), nn.Linear(hidden, n_classes)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(self.input(x))), 1))


BASELINES = {
    "wu_cnn": WuSTFTCNN,
    "deep_cnn": KojimaDeepCNN,
    "resnet18": ResNet18,
    "efficientnet_b0": EfficientNetB0,
    "mobilenet_v3": MobileNetV3Small,
}
"""Baseline name -> class, as the CLI, the CSV and the report name them."""

DISPLAY_NAMES = {
    "wu_cnn": "STFT-CNN",
    "deep_cnn": "Deep CNN",
    "resnet18": "R-18",
    "efficientnet_b0": "Eff-B0",
    "mobilenet_v3": "Mob-V3",
}


def _init_weights(model: nn.Module) -> None:
    """He initialisation for convolutions, unit BatchNorm (torchvision's choice for these nets)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


def build_baseline(name: str, n_classes: int, width: float = 1.0) -> nn.Module:
    """A freshly initialised baseline by name."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid choices: {', '.join(BASELINES)}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    model = BASELINES[name](n_classes, width)
    _init_weights(model)
    return model


def load_pretrained(model: nn.Module, path) -> dict:
    """Load a user's state dict (for example torchvision's ImageNet weights) into `model`.

    Tensors are matched by name and shape; a 3-channel stem convolution is summed over
    its input channels to take our 1-channel input; tensors whose shape cannot match (the
    classifier for a different class count) keep their fresh values. Returns the names
    loaded, adapted and kept; raises ValueError when fewer than half the model's tensors
    could be taken from the file, which means it is the wrong architecture or width."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    own = model.state_dict()
    loaded, adapted, kept = [], [], []
    for name, tensor in own.items():
        source = state.get(name)
        if source is None:
            kept.append(name)
        elif source.shape == tensor.shape:
            own[name] = source.to(tensor.dtype)
            loaded.append(name)
        elif (
            source.dim() == 4
            and tensor.dim() == 4
            and tensor.shape[1] == 1
            and source.shape[0] == tensor.shape[0]
            and source.shape[2:] == tensor.shape[2:]
        ):
            own[name] = source.sum(dim=1, keepdim=True).to(tensor.dtype)
            adapted.append(name)
        else:
            kept.append(name)
    if len(loaded) + len(adapted) < len(own) / 2:
        raise ValueError(
            f"{path}: only {len(loaded) + len(adapted)} of {len(own)} tensors of "
            f"{type(model).__name__} match by name and shape; is it the right architecture "
            f"at width 1.0?"
        )
    model.load_state_dict(own)
    return {"loaded": loaded, "adapted": adapted, "kept": kept}
