"""Theorem 1's construction and the minimum-norm interpolant, on small data."""

import json
import os
import subprocess
import sys
import unittest

import numpy as np
from scipy.linalg import solve_triangular
import tensorflow as tf

import testutil
from zhang2017.data import datasets as data
from zhang2017.theory import expressivity_lib
from zhang2017.theory import kernel_lib
from zhang2017.theory import wavelets

DATA = testutil.data_dir()


class FiniteSampleTest(tf.test.TestCase):

  def test_structured_solve_equals_dense_solve(self):
    rng = np.random.default_rng(0)
    zs = np.sort(rng.choice(10_000, 300, replace=False)).astype(np.float64)
    b = expressivity_lib.biases(zs)
    y = rng.normal(size=300)
    dense = expressivity_lib.dense_matrix(zs, b)
    self.assertAllEqual(np.triu(dense, 1), np.zeros_like(dense))
    self.assertTrue((np.diag(dense) > 0).all())
    w_dense = solve_triangular(dense, y, lower=True)
    w = expressivity_lib.solve_structured(zs, b, y)
    self.assertAllClose(w, w_dense, rtol=1e-9, atol=1e-9)
    self.assertAllClose(dense @ w, y, atol=1e-6)
    self.assertAllClose(expressivity_lib.predict_sorted(zs, b, w), y, atol=1e-6)

  def test_fits_random_labels_exactly_with_2n_plus_d_weights(self):
    ds = data.synthetic(n_train=500, seed=2)
    net = expressivity_lib.fit(ds.x_train, ds.y_train, seed=0)
    # Projections reach ~1e11, so float64 leaves ~1e-5 of the targets' 0.5
    # margin; rounding recovers every label.
    self.assertAllClose(net['fitted'], ds.y_train, atol=1e-3)
    model = expressivity_lib.keras_model(net['a'], net['b'], net['w'])
    n, d = 500, 32 * 32 * 3
    self.assertEqual(model.count_params(), 2 * n + d)
    x = ds.x_train.reshape(n, -1).astype(np.float64)
    pred = model.predict(x, batch_size=100, verbose=0)[:, 0]
    self.assertAllClose(pred, ds.y_train, atol=1e-2)
    self.assertAllEqual(np.rint(pred), ds.y_train)

  def test_keras_model_on_jax_needs_x64_and_then_fits(self):
    code = ('import numpy as np; from zhang2017.data import datasets as data; '
            'from zhang2017.theory import expressivity_lib; '
            'ds = data.synthetic(n_train=300, seed=2); '
            'net = expressivity_lib.fit(ds.x_train, ds.y_train, seed=0); '
            'm = expressivity_lib.keras_model(net["a"], net["b"], net["w"]); '
            'p = m.predict(ds.x_train.reshape(300, -1).astype(np.float64), '
            'batch_size=100, verbose=0)[:, 0]; '
            'print(float(np.abs(p - ds.y_train).max()))')
    for x64, expect in (('0', 'set JAX_ENABLE_X64=1'), ('1', None)):
      p = subprocess.run(
          [sys.executable, '-c', code], cwd=testutil.ROOT, capture_output=True,
          text=True, timeout=300, env={**os.environ, 'KERAS_BACKEND': 'jax',
                                       'JAX_ENABLE_X64': x64})
      if expect:
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(expect, p.stderr)
      else:
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertLess(float(testutil.last_line(p.stdout)), 1e-2)

  def test_depth_k_variant_is_the_same_function_in_narrow_layers(self):
    n, d = 500, 32 * 32 * 3
    ds = data.synthetic(n_train=n, seed=2)
    net = expressivity_lib.fit(ds.x_train, ds.y_train, seed=0)
    z_min = net['z_min']
    for depth in (3, 4, 7, n + 2):
      with self.subTest(depth=depth):
        layers = expressivity_lib.deep_layers(net['a'], net['b'], net['w'],
                                              z_min, depth)
        self.assertLen(layers, depth)
        widths = [w.shape[1] for w, _ in layers]
        self.assertLessEqual(max(widths), -(-n // (depth - 2)) + 3)
        weights = sum(w.nnz for w, _ in layers)
        self.assertBetween(weights, d + n, d + 3 * n + 6 * depth)
        out = expressivity_lib.deep_predict(layers, ds.x_train)
        # Both sum the same terms in other orders: ~1e-4 apart at z ~ 1e11.
        self.assertAllClose(out, net['fitted'], atol=1e-3)
        self.assertAllEqual(np.rint(out), ds.y_train)
    with self.assertRaisesRegex(ValueError, 'depth 2 is Theorem 1'):
      expressivity_lib.deep_layers(net['a'], net['b'], net['w'], z_min, 2)

  def test_duplicate_inputs_cannot_be_separated(self):
    x = np.zeros((3, 4), np.uint8)
    with self.assertRaisesRegex(ValueError, 'duplicate'):
      expressivity_lib.projection(x, seed=0)

  @unittest.skipIf(DATA is None, 'real data not found')
  def test_binary_on_mnist_subset(self):
    out = self.create_tempdir().full_path
    p = testutil.run_module('zhang2017.expressivity', '--dataset=mnist',
                            '--labels=random', '--train_size=2000',
                            f'--output_dir={out}',
                            env={'ZHANG2017_DATA_DIR': DATA})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    with open(os.path.join(out, 'result.json')) as f:
      r = json.load(f)
    self.assertEqual(r['train_accuracy'], 1.0)
    self.assertEqual(r['params'], 2 * 2000 + 784)
    self.assertLess(r['max_abs_residual'], 1e-3)
    deep = os.path.join(out, 'depth5')
    p = testutil.run_module('zhang2017.expressivity', '--dataset=mnist',
                            '--labels=random', '--train_size=2000',
                            '--depth=5', f'--output_dir={deep}',
                            env={'ZHANG2017_DATA_DIR': DATA})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    with open(os.path.join(deep, 'result.json')) as f:
      r = json.load(f)
    self.assertEqual((r['status'], r['train_accuracy'], r['depth']),
                     ('fitted', 1.0, 5))
    self.assertLessEqual(r['weights'], 784 + 3 * 2000 + 30)
    self.assertEqual(r['max_width'], 2000 // 3 + 1 + 3)


class InterpolationTest(tf.test.TestCase):

  def test_median_rule_puts_exp_minus_one_at_the_median_distance(self):
    x = np.eye(50, dtype=np.float32) * 3  # Every pairwise |x - x'|^2 is 18.
    self.assertAllClose(kernel_lib.median_gamma(x), 50 / 18)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (400, 20))
    g = kernel_lib.median_gamma(x, seed=0)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)[np.triu_indices(400, 1)]
    self.assertAllClose(g, 20 / np.median(d2), rtol=0.02)  # A sample of pairs.
    self.assertEqual(g, kernel_lib.median_gamma(x, seed=0))

  def test_wavelet_features(self):
    phi, psis = wavelets.filter_bank(28, scales=2, orientations=8)
    self.assertLen(psis, 16)
    self.assertAllClose(phi[0, 0], 1.0, atol=1e-4)  # An average.
    for psi in psis:  # Wavelets: zero mean, band-pass.
      self.assertLess(abs(psi[0, 0]), 1e-12)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 28, 28, 1))
    f = wavelets.transform(x)
    self.assertEqual(f.shape, (5, 17 * 7 * 7))
    self.assertAllEqual(f, wavelets.transform(x))
    # The low-pass channel of a constant image is that constant; its
    # wavelet channels vanish.
    c = wavelets.transform(np.full((1, 28, 28, 1), 0.5))
    self.assertAllClose(c[0, :49], np.full(49, 0.5), atol=1e-4)
    self.assertLess(np.abs(c[0, 49:]).max(), 1e-6)

  def test_wavelet_filters_and_transform_against_their_definition(self):
    size, scales = 28, 2
    phi, psis = wavelets.filter_bank(size, scales, 8)
    w = 2 * np.pi * np.fft.fftfreq(size)
    for i, psi in enumerate(psis):  # Each band peaks near 3 pi / 4 / 2^j.
      a, b = np.unravel_index(np.abs(psi).argmax(), psi.shape)
      self.assertAllClose(np.hypot(w[a], w[b]), 0.75 * np.pi / 2 ** (i // 8),
                          rtol=0.15)
    # The low-pass is a Gaussian of sigma 0.8 * 2^J (module docstring).
    self.assertAllClose(phi[:4, 0],
                        np.exp(-0.5 * (0.8 * 2 ** scales * w[:4]) ** 2),
                        rtol=1e-3, atol=1e-6)
    # The transform against a direct circular convolution in space (no FFT):
    # |x * psi| averaged by phi, subsampled by 2^J.
    x = np.random.default_rng(3).uniform(0, 1, (size, size))
    u = np.arange(size)
    d = (u[:, None] - u[None, :]) % size  # (a - u) mod n per axis.

    def conv(img, kernel_spatial):
      return np.einsum('uv,auv->a', img,
                       kernel_spatial[d[:, None, :, None], d[None, :, None, :]]
                       .reshape(size * size, size, size)).reshape(size, size)

    band = 11
    mod = np.abs(conv(x, np.fft.ifft2(psis[band])))
    direct = conv(mod, np.fft.ifft2(phi)).real[::4, ::4]
    f = wavelets.transform(x[None])[0].reshape(17, 7, 7)
    self.assertAllClose(f[1 + band], direct, rtol=1e-5, atol=1e-6)
    self.assertAllClose(f[0], conv(x, np.fft.ifft2(phi)).real[::4, ::4],
                        rtol=1e-5, atol=1e-6)

  def test_tiled_cholesky_equals_dense_solve(self):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (500, 30)).astype(np.float32)
    y = np.eye(10)[rng.integers(0, 10, 500)]
    for dtype, tol in ((np.float32, 1e-3), (np.float64, 1e-8)):
      m = kernel_lib.TiledSPD.kernel(x, 'gaussian', gamma=10.0, tile=128,
                                     dtype=dtype)
      self.assertEqual(m.tiles[1, 0].dtype, dtype)
      k = np.zeros((500, 500))
      for (i, j), t in m.tiles.items():
        k[m.rows(i), m.rows(j)] = t
        k[m.rows(j), m.rows(i)] = t.T
      alpha_ref = np.linalg.solve(k, y)
      m.cholesky()
      alpha = m.solve(y)
      self.assertAllClose(k @ alpha, y, atol=tol)
      self.assertAllClose(alpha, alpha_ref, rtol=1e-2, atol=1e-2 * np.abs(
          alpha_ref).max())
      # Predicting the training points returns the labels (interpolation).
      pred = kernel_lib.predict(x, alpha, x[:50], 'gaussian', 10.0, tile=128,
                                dtype=dtype)
      self.assertAllClose(pred, y[:50], atol=tol)
    # A gamma so large that rounding of |x - x|^2 underflows k(x, x): the
    # message names the smaller gamma, not a larger one.
    m = kernel_lib.TiledSPD.kernel(x * 100, 'gaussian', gamma=1e30, tile=128)
    self.assertLess(min(m.tiles[k, k].diagonal().min() for k in range(m.t)),
                    1.0)
    with self.assertRaisesRegex(np.linalg.LinAlgError,
                                r'diagonal reaches 0 .*use a smaller --gamma'):
      m.cholesky()
    # A linear kernel's diagonal is |x|^2: an all-zero input needs --l2.
    m = kernel_lib.TiledSPD.kernel(np.zeros_like(x[:20]), 'linear', tile=128)
    with self.assertRaisesRegex(np.linalg.LinAlgError,
                                r'reaches 0 .*linear one\); add --l2'):
      m.cholesky()

  def test_ridge_norm_is_the_fitted_functions_norm_and_status_is_honest(self):
    rng = np.random.default_rng(2)
    x = rng.random((300, 20)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    k = np.exp(-10.0 * ((x[:, None] - x[None]) ** 2).sum(-1) / 20)
    onehot = np.eye(3)[y]
    for l2 in (0.0, 0.1):
      r = kernel_lib.interpolate(x, y, x[:10], y[:10], 3, gamma=10.0, l2=l2,
                                 tile=128)
      alpha = np.linalg.solve(k + l2 * np.eye(300), onehot)
      self.assertAllClose(r['rkhs_norm'],
                          np.sqrt(np.sum(alpha * (k @ alpha))), rtol=1e-3)
      r['flags'] = {'l2': l2}
      self.assertEqual(kernel_lib.status(r),
                       'ridge' if l2 else 'interpolated')
      # With the ridge the fit is not exact; without it, it is.
      self.assertEqual(r['max_abs_interpolation_residual'] > 1e-2, bool(l2))
    # y . alpha over-states the ridge solution's norm.
    self.assertLess(r['rkhs_norm'], np.sqrt(np.sum(onehot * alpha)) - 0.1)
    self.assertEqual(kernel_lib.status(
        {'flags': {'l2': 0}, 'max_abs_residual': 0.19,
         'train_error_sample': 0.0}), 'labels_fitted')
    self.assertEqual(kernel_lib.status(
        {'flags': {'l2': 0}, 'max_abs_residual': 0.6,
         'train_error_sample': 0.01}), 'not_fitted')

  def test_sgd_from_zero_converges_to_the_minimum_norm_solution(self):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 100)) / 10  # Overparameterized: d > n.
    y = rng.normal(size=20)
    w_min = x.T @ np.linalg.solve(x @ x.T, y)  # X^T (X X^T)^-1 y.
    w = sgd_least_squares(x, y, lr=2.0, steps=20000, batch=5)
    self.assertAllClose(x @ w, y, atol=1e-6)
    self.assertLess(np.linalg.norm(w - w_min) / np.linalg.norm(w_min), 1e-5)
    # Another interpolating solution exists, farther from zero: the data's
    # null space. SGD from zero never leaves the row space.
    null = np.linalg.svd(x)[2][-1]
    self.assertAllClose(x @ (w + null), y, atol=1e-6)
    self.assertGreater(np.linalg.norm(w + null), np.linalg.norm(w))

  @unittest.skipIf(DATA is None, 'real data not found')
  def test_binary_on_mnist_subset(self):
    out = self.create_tempdir().full_path
    p = testutil.run_module('zhang2017.kernel', '--dataset=mnist',
                            '--gamma=10', '--train_size=3000', '--tile=1000',
                            f'--output_dir={out}',
                            env={'ZHANG2017_DATA_DIR': DATA})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    with open(os.path.join(out, 'result.json')) as f:
      r = json.load(f)
    self.assertEqual(r['train_error_sample'], 0.0)
    self.assertLess(r['max_abs_residual'], 1e-3)
    self.assertLess(r['test_error'], 0.08)
    self.assertIn('peak memory', p.stdout)
    self.assertEqual((r['gamma'], r['gamma_rule']), (10.0, 'fixed'))
    p = testutil.run_module('zhang2017.kernel', '--dataset=mnist',
                            '--gamma_rule=median', '--train_size=1000',
                            '--tile=500', f'--output_dir={out}/median',
                            env={'ZHANG2017_DATA_DIR': DATA})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    self.assertRegex(p.stdout, r'gamma 7\.\d+ \(median\)')
    with open(os.path.join(out, 'median', 'result.json')) as f:
      self.assertEqual(json.load(f)['flags']['gamma_rule'], 'median')
    p = testutil.run_module('zhang2017.kernel', '--dataset=mnist',
                            '--gamma_rule=median', '--train_size=3000',
                            '--preprocessing=wavelet', '--tile=1000',
                            f'--output_dir={out}/wavelet',
                            env={'ZHANG2017_DATA_DIR': DATA})
    self.assertEqual(p.returncode, 0, p.stderr[-2000:])
    self.assertIn('833 features per image', p.stdout)
    with open(os.path.join(out, 'wavelet', 'result.json')) as f:
      r = json.load(f)
    self.assertEqual(r['flags']['preprocessing'], 'wavelet')
    self.assertEqual(r['train_error_sample'], 0.0)  # Interpolates.
    ds = data.subset(data.load('mnist', DATA), 3000, 0)
    median = kernel_lib.median_gamma(wavelets.transform(ds.x_train / 255.0))
    # The median rule keeps gamma; float32 needs a small ridge here.
    self.assertAllClose(r['gamma'], median, rtol=1e-5)
    self.assertIn(r['jitter'], (0.0,) + kernel_lib.JITTERS)
    self.assertLess(r['test_error'], 0.06)



def sgd_least_squares(x, y, lr, steps, seed=0, batch=None):
  """Plain SGD on 0.5 |X w - y|^2 from w = 0 (the span argument of Sec. 5)."""
  rng = np.random.default_rng(seed)
  w = np.zeros((x.shape[1],) + y.shape[1:])
  n = len(x)
  for _ in range(steps):
    idx = rng.choice(n, batch, replace=False) if batch else np.arange(n)
    w -= lr * x[idx].T @ (x[idx] @ w - y[idx]) / len(idx)
  return w


if __name__ == '__main__':
  tf.test.main()
