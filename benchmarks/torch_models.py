"""The paper's small Inception, small AlexNet and MLP 1x512 in plain PyTorch.

The reference a user would write instead of the project, for
benchmarks/cpu_speed.py: the layer shapes and trainable parameter counts of
zhang2017/models/paper_models.py, the same preprocessing inside the model (scale to
[0, 1], centre crop 28, per-image standardization), raw NHWC uint8 images in
(read as channels-last NCHW, so no copy), and PyTorch's own layers
(`BatchNorm2d`, `LocalResponseNorm`). Only speed is compared: initializers
differ, and at stride 2 PyTorch pads 'same' on both sides (TF: bottom/right).
"""

import torch
from torch import nn

PAPER_PARAMS = {
    'inception_small': 1_649_402,
    'inception_small_nobn': 1_649_402,  # Conv biases replace BN's betas.
    'alexnet_small': 1_387_786,
    'mlp_1x512': 1_209_866,
}


class Preprocess(nn.Module):
  """uint8 (N, H, W, C) -> standardized (N, C, crop, crop), channels-last."""

  def __init__(self, crop=28):
    super().__init__()
    self.crop = crop

  def forward(self, x):
    x = x.permute(0, 3, 1, 2).float() / 255  # A channels-last view of NHWC.
    top, left = (x.shape[2] - self.crop) // 2, (x.shape[3] - self.crop) // 2
    x = x[:, :, top:top + self.crop, left:left + self.crop]
    n = x[0].numel()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    x = (x - mean) / torch.clamp(std, min=n ** -0.5)
    return x.contiguous(memory_format=torch.channels_last)


def conv_bn(cin, cout, k, stride=1, batchnorm=True):
  """Conv (no bias) + BatchNorm without a scale (Keras scale=False) + ReLU;
  without BatchNorm, a biased conv + ReLU."""
  if not batchnorm:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2),
                         nn.ReLU(inplace=True))
  bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)  # Keras 0.99 decay.
  bn.weight.requires_grad_(False)  # Fixed at 1: the fused kernel, no gamma.
  return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                       bn, nn.ReLU(inplace=True))


class Inception(nn.Module):
  """Concatenation of a 1x1 and a 3x3 conv_bn."""

  def __init__(self, cin, c1, c3, batchnorm=True):
    super().__init__()
    self.b1 = conv_bn(cin, c1, 1, batchnorm=batchnorm)
    self.b3 = conv_bn(cin, c3, 3, batchnorm=batchnorm)
    self.cout = c1 + c3

  def forward(self, x):
    return torch.cat([self.b1(x), self.b3(x)], dim=1)


class Downsample(nn.Module):
  """Concatenation of a stride-2 3x3 conv_bn and a 3x3 stride-2 max pool."""

  def __init__(self, cin, c3, batchnorm=True):
    super().__init__()
    self.conv = conv_bn(cin, c3, 3, 2, batchnorm=batchnorm)
    self.pool = nn.MaxPool2d(3, 2, 1)
    self.cout = cin + c3

  def forward(self, x):
    return torch.cat([self.conv(x), self.pool(x)], dim=1)


def inception_small(num_classes=10, batchnorm=True):
  """The paper's small Inception (with BatchNorm, or without)."""
  mods, c = [Preprocess(), conv_bn(3, 96, 3, batchnorm=batchnorm)], 96
  plan = [(32, 32), (32, 48), 80, (112, 48), (96, 64), (80, 80), (48, 96), 96,
          (176, 160), (176, 160)]
  for p in plan:
    mods.append(Inception(c, *p, batchnorm=batchnorm) if isinstance(p, tuple)
                else Downsample(c, p, batchnorm=batchnorm))
    c = mods[-1].cout
  mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
  return nn.Sequential(*mods)


def alexnet_small(num_classes=10):
  """Two 5x5 conv + max pool + LRN blocks, then 384 and 192 dense units."""
  mods, c = [Preprocess()], 3
  for _ in range(2):
    # TF's LRN (depth_radius 4, alpha 0.001/9 on the sum) is PyTorch's
    # size 9 with alpha 0.001 (PyTorch divides alpha by the size).
    mods += [nn.Conv2d(c, 64, 5, padding=2), nn.ReLU(inplace=True),
             nn.MaxPool2d(3, 2, 1),
             nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)]
    c = 64
  mods += [nn.Flatten(), nn.Linear(7 * 7 * 64, 384), nn.ReLU(inplace=True),
           nn.Linear(384, 192), nn.ReLU(inplace=True),
           nn.Linear(192, num_classes)]
  return nn.Sequential(*mods)


def mlp_1x512(num_classes=10):
  """One hidden layer of 512 units on the 28x28x3 crop."""
  return nn.Sequential(Preprocess(), nn.Flatten(), nn.Linear(28 * 28 * 3, 512),
                       nn.ReLU(inplace=True), nn.Linear(512, num_classes))


BUILDERS = {'inception_small': inception_small,
            'inception_small_nobn': lambda: inception_small(batchnorm=False),
            'alexnet_small': alexnet_small, 'mlp_1x512': mlp_1x512}


def build(name):
  """The model in channels-last memory; its trainable count checked."""
  model = BUILDERS[name]().to(memory_format=torch.channels_last)
  n = count_params(model)
  assert n == PAPER_PARAMS[name], (name, n, PAPER_PARAMS[name])
  return model


def count_params(model):
  """Number of trainable parameters."""
  return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(model, x):
  """FLOPs of one image's forward pass (convolutions and linear layers),
  counted like benchmarks/flops.py, on the batch `x`."""
  total = []

  def hook(mod, _, out):
    if isinstance(mod, nn.Conv2d):
      kh, kw = mod.kernel_size
      total.append(2 * out.shape[2] * out.shape[3] * kh * kw * mod.in_channels
                   * mod.out_channels // mod.groups)
    else:
      total.append(2 * mod.in_features * mod.out_features)

  handles = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
  with torch.no_grad():
    model(x[:1])
  for h in handles:
    h.remove()
  return sum(total)
