"""One epoch of SGD and batched inference, per backend.

Both trainers see the same batches in the same order: the loop in
`training.py` hands them each epoch's permutation (drawn with numpy from the
seed), and both run ceil(n / batch_size) steps, the last one partial.

* `KerasTrainer` (TensorFlow backend): `model.fit` on a tf.data pipeline that
  gathers each batch from the in-memory arrays; works under tf.distribute.
* `JaxTrainer` (JAX backend): the data lives on the device, one jitted
  `lax.scan` runs a whole epoch (preprocessing is part of the model, so it is
  inside the compiled step), and nothing recompiles between epochs.
"""

import contextlib
import sys

import keras
import numpy as np


def softmax_cross_entropy(logits, labels):
  """Per-example cross-entropy of integer labels under float logits (numpy)."""
  logits = logits.astype(np.float64)
  m = logits.max(axis=1, keepdims=True)
  lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
  return lse - logits[np.arange(len(labels)), labels]


def _loss_fn():
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class KerasTrainer:
  """`model.fit` one epoch at a time on a tf.data pipeline."""

  def __init__(self, model, optimizer, train, test_x, batch_size,
               eval_batch_size=1000, strategy=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self.model, self.batch_size = model, batch_size
    self.eval_batch_size = eval_batch_size
    self._eval_x = {'train': train[0], 'test': test_x}
    with strategy.scope() if strategy else contextlib.nullcontext():
      model.compile(optimizer=optimizer, loss=_loss_fn(),
                    metrics=['accuracy'])
    # One copy of the data in the graph; each batch is a gather from it.
    with tf.device('/cpu:0'):
      self._x = tf.constant(train[0])
      self._y = tf.constant(train[1].astype(np.int32))

  def _dataset(self, perm):
    tf = self._tf
    ds = tf.data.Dataset.from_tensor_slices(perm.astype(np.int32))
    ds = ds.batch(self.batch_size).map(
        lambda i: (tf.gather(self._x, i), tf.gather(self._y, i)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.prefetch(2).with_options(options)

  def train_epoch(self, epoch, perm):
    """Runs one epoch over `perm`; returns the mean mini-batch loss."""
    h = self.model.fit(self._dataset(perm), epochs=epoch + 1,
                       initial_epoch=epoch, shuffle=False,
                       verbose=1 if sys.stdout.isatty() else 0)
    return float(h.history['loss'][-1])

  def predict(self, split):
    """Inference-mode logits for the 'train' or 'test' images."""
    return np.asarray(self.model.predict(
        self._eval_x[split], batch_size=self.eval_batch_size, verbose=0),
                      np.float32)

  def sync(self):
    pass


class JaxTrainer:
  """A jitted whole-epoch `lax.scan` over device-resident data."""

  def __init__(self, model, optimizer, train, test_x, batch_size,
               eval_batch_size=1000, strategy=None):
    del strategy  # One device; several runs share a GPU as processes.
    self.eval_batch_size = eval_batch_size
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
    optimizer.build(model.trainable_variables)
    self._x = jax.device_put(train[0])
    self._y = jax.device_put(train[1].astype(np.int32))
    self._eval_x = {'train': self._x, 'test': jax.device_put(test_x)}
    self._padded = {}
    loss_obj = _loss_fn()

    def run(state, x, y, idx):
      # x and y are arguments, not closure constants, so the compiled
      # program does not embed the dataset.
      def step(state, i):
        tv, ntv, ov = state
        xb, yb = jnp.take(x, i, axis=0), jnp.take(y, i, axis=0)

        def loss_fn(tv):
          logits, ntv2, losses = model.stateless_call(
              tv, ntv, xb, training=True, return_losses=True)
          loss = loss_obj(yb, logits)
          return (loss + sum(losses) if losses else loss), ntv2

        (loss, ntv2), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv)
        tv2, ov2 = optimizer.stateless_apply(ov, grads, tv)
        return (tv2, ntv2, ov2), loss
      return jax.lax.scan(step, state, idx)

    def predict(tv, ntv, xs):
      def one(xb):
        logits, _ = model.stateless_call(tv, ntv, xb, training=False)
        return logits.astype(jnp.float32)
      return jax.lax.map(one, xs)

    self._run = jax.jit(run, donate_argnums=(0,))
    self._predict = jax.jit(predict)
    self._state = self._compiled = None

  def _read_state(self):
    return ([v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables],
            [v.value for v in self.optimizer.variables])

  def _compile(self, perm):
    """Compiles the full-batch epoch, the partial last batch and both
    evaluations at once: XLA compiles in parallel threads, so the first
    epoch waits for the slowest program, not for their sum."""
    import concurrent.futures  # pylint: disable=g-import-not-at-top
    bs, n = self.batch_size, len(perm)
    state = self._read_state()
    jobs = {}
    if n >= bs:
      jobs['full'] = (self._run, (state, self._x, self._y,
                                  np.zeros((n // bs, bs), np.int32)))
    if n % bs:
      jobs['rest'] = (self._run, (state, self._x, self._y,
                                  np.zeros((1, n % bs), np.int32)))
    for split in self._eval_x:
      jobs[split] = (self._predict, (state[0], state[1],
                                     self._batched(split)))
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
      futures = {k: pool.submit(lambda f, a: f.lower(*a).compile(), *v)
                 for k, v in jobs.items()}
      self._compiled = {k: f.result() for k, f in futures.items()}

  def train_epoch(self, epoch, perm):
    """Runs one epoch over `perm`; returns the mean mini-batch loss."""
    del epoch
    if self._compiled is None:
      self._compile(perm)
    # Re-read each epoch: the loop may have restored a checkpoint.
    self._state = self._read_state()
    bs = self.batch_size
    full = len(perm) // bs * bs
    losses = []
    if full:
      self._state, l = self._compiled['full'](
          self._state, self._x, self._y,
          perm[:full].reshape(-1, bs).astype(np.int32))
      losses.append(np.asarray(l))
    if full < len(perm):  # The partial last batch, as on TensorFlow.
      self._state, l = self._compiled['rest'](
          self._state, self._x, self._y, perm[None, full:].astype(np.int32))
      losses.append(np.asarray(l))
    self.sync()
    return float(np.concatenate(losses).mean())

  def sync(self):
    """Writes the compiled loop's state back into the Keras variables."""
    tv, ntv, ov = self._state
    for var, val in zip(self.model.trainable_variables, tv):
      var.assign(val)
    for var, val in zip(self.model.non_trainable_variables, ntv):
      var.assign(val)
    for var, val in zip(self.optimizer.variables, ov):
      var.assign(val)

  def _batched(self, split):
    """The split's images padded to whole eval batches, kept on device."""
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    if split not in self._padded:
      x = self._eval_x[split]
      bs = min(self.eval_batch_size, x.shape[0])
      pad = -x.shape[0] % bs
      if pad:
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])
      self._padded[split] = x.reshape((-1, bs) + x.shape[1:])
    return self._padded[split]

  def predict(self, split):
    """Inference-mode logits for the 'train' or 'test' images."""
    tv, ntv, _ = self._read_state()
    fn = self._compiled[split] if self._compiled else self._predict
    logits = fn(tv, ntv, self._batched(split))
    n = self._eval_x[split].shape[0]
    return np.asarray(logits).reshape(-1, logits.shape[-1])[:n]


class StrategyTrainer(KerasTrainer):
  """A tf.distribute training loop (`strategy.run`) for several devices/workers.

  Keras 3's `fit` does not run under MultiWorkerMirroredStrategy
  (keras-team/keras#20585), so under a strategy the step is written out:
  per-replica loss averaged over the global batch, gradients all-reduced by
  the optimizer. Evaluation runs on each worker's own copy of the weights.
  """

  def __init__(self, model, optimizer, train, test_x, batch_size,
               eval_batch_size=1000, strategy=None):
    super().__init__(model, optimizer, train, test_x, batch_size,
                     eval_batch_size, strategy)
    tf = self._tf
    self.strategy = strategy
    with strategy.scope():
      optimizer.build(model.trainable_variables)
    per_example = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=None)

    def replica_step(x, y):
      with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.nn.compute_average_loss(per_example(y, logits))
        if model.losses:
          loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))
      return loss

    @tf.function
    def step(x, y):
      losses = strategy.run(replica_step, args=(x, y))
      return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    self._step = step

  def train_epoch(self, epoch, perm):
    del epoch
    dist = self.strategy.experimental_distribute_dataset(self._dataset(perm))
    losses = [float(self._step(x, y)) for x, y in dist]
    return float(np.mean(losses))

  def predict(self, split):
    x = self._eval_x[split]
    bs = self.eval_batch_size
    return np.concatenate([
        np.asarray(self.model(x[i:i + bs], training=False), np.float32)
        for i in range(0, len(x), bs)])


def make(model, optimizer, train, test_x, batch_size, eval_batch_size=1000,
         strategy=None):
  """The trainer for the current Keras backend (and strategy)."""
  if strategy is not None:
    return StrategyTrainer(model, optimizer, train, test_x, batch_size,
                           eval_batch_size, strategy)
  cls = JaxTrainer if keras.backend.backend() == 'jax' else KerasTrainer
  return cls(model, optimizer, train, test_x, batch_size, eval_batch_size,
             strategy)
