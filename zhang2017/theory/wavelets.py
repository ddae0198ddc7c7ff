"""A Gabor (Morlet) wavelet transform of small grey images, for Section 5's
"MNIST after a Gabor wavelet transform" (the paper does not say which).

We use the first order of a scattering transform (Bruna & Mallat 2013; the
full transform, as in kymatio, also has a second order, which we leave out):
Morlet wavelets at J scales and L orientations, the modulus of each filtered
image, averaged by a Gaussian and subsampled by 2^J; plus the image itself
averaged the same way. For 28x28 MNIST with J = 2, L = 8: (1 + J L) x 7 x 7 =
833 features. Pure numpy (FFT convolutions, periodic boundary),
deterministic. The wavelets follow kymatio's Morlet definition (sigma =
0.8 * 2^j, centre frequency 3 pi / 4 / 2^j, slant 4 / L), without its
padding. The low-pass Gaussian is wider than kymatio's: sigma = 0.8 * 2^J
where kymatio uses 0.8 * 2^(J-1); the committed MNIST runs used this one.
"""

import numpy as np


def _gabor(size, sigma, theta, xi, slant):
  """A Gabor filter centred in a size x size grid (spatial domain)."""
  r = np.array([[np.cos(theta), -np.sin(theta)],
                [np.sin(theta), np.cos(theta)]])
  inv = r @ np.diag([1.0, slant ** 2]) @ r.T / sigma ** 2  # Curvature.
  u = np.arange(size) - size // 2
  x, y = np.meshgrid(u, u, indexing='ij')
  quad = inv[0, 0] * x * x + (inv[0, 1] + inv[1, 0]) * x * y + inv[1, 1] * y * y
  g = np.exp(-0.5 * quad + 1j * xi * (x * np.cos(theta) + y * np.sin(theta)))
  return g / (2 * np.pi * sigma ** 2 / slant)


def _morlet(size, sigma, theta, xi, slant):
  """A zero-mean Gabor: the Gabor minus its mean times the envelope."""
  wave = _gabor(size, sigma, theta, xi, slant)
  envelope = _gabor(size, sigma, theta, 0.0, slant)
  return wave - wave.sum() / envelope.sum() * envelope


def filter_bank(size=28, scales=2, orientations=8):
  """(low-pass phi, [Morlet psi_{j, l}]) in the Fourier domain."""
  f = lambda k: np.fft.fft2(np.fft.ifftshift(k))
  phi = f(_gabor(size, 0.8 * 2 ** scales, 0.0, 0.0, 1.0)).real
  psis = [f(_morlet(size, 0.8 * 2 ** j,
                    (int(orientations - orientations / 2 - 1) - l) * np.pi /
                    orientations, 3.0 / 4.0 * np.pi / 2 ** j,
                    4.0 / orientations))
          for j in range(scales) for l in range(orientations)]
  return phi, psis


def transform(images, scales=2, orientations=8, batch=2000):
  """First-order scattering features of (n, h, w[, 1]) images in [0, 1].

  Returns:
    float32 (n, (1 + scales * orientations) * (h / 2^scales)^2).
  """
  x = np.asarray(images, np.float64).reshape(len(images), *images.shape[1:3])
  size, step = x.shape[1], 2 ** scales
  phi, psis = filter_bank(size, scales, orientations)
  out = []
  for i in range(0, len(x), batch):
    xf = np.fft.fft2(x[i:i + batch])
    maps = [xf] + [np.fft.fft2(np.abs(np.fft.ifft2(xf * psi))) for psi in psis]
    low = [np.fft.ifft2(m * phi).real[:, ::step, ::step] for m in maps]
    out.append(np.stack(low, axis=1).reshape(len(xf), -1).astype(np.float32))
  return np.concatenate(out)
