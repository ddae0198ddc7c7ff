"""One epoch of SGD and batched inference, per backend.

The batch protocol (the same on every backend and on resume):

* Training: each epoch takes the seeded permutation the loop in `training.py`
  hands it and runs n // batch_size steps of exactly `batch_size` examples;
  the n % batch_size examples at the end of the permutation sit that epoch
  out (the next epoch's permutation is a new one, so no example is left out
  for long). Every step has one shape, so a compiled backend builds one
  training program, and BatchNorm never sees a small last batch.
* Evaluation: both splits are cut into batches of exactly `eval_batch_size`,
  the last one padded with copies of the split's last image (inference mode
  has no batch statistics, so padding changes nothing) and the padding's
  outputs dropped: one evaluation program for train and test.

Each epoch returns the mean mini-batch loss and the running accuracy: the
fraction of the epoch's training examples classified correctly in training
mode, on the samples the step saw (cropped/augmented when those are on).

* `KerasTrainer` (TensorFlow backend): `model.fit` on a tf.data pipeline that
  gathers each batch from the in-memory arrays.
* `StrategyTrainer` (TensorFlow, several replicas or workers): the same
  pipeline under `strategy.run`.
* `JaxTrainer` (JAX backend): the data lives on the device, one jitted
  `lax.scan` runs `steps_per_call` steps (a whole epoch by default on a GPU,
  one step without a loop on a CPU;
  preprocessing is part of the model, so it is inside the compiled step),
  and nothing recompiles between epochs or runs of the same model.
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


def epoch_batches(perm, batch_size):
  """An epoch's training batches: (steps, batch_size) indices, remainder out."""
  steps = len(perm) // batch_size
  return np.asarray(perm[:steps * batch_size], np.int32).reshape(
      steps, batch_size)


def default_steps_per_call():
  """1 on a CPU (XLA:CPU ran small Inception's step 17x slower inside a
  `lax.scan` than alone: 75 s vs 4.3 s per step here), else a whole epoch."""
  import jax  # pylint: disable=g-import-not-at-top
  return 1 if jax.default_backend() == 'cpu' else 0


def chunk_steps(steps, steps_per_call):
  """Steps per compiled call: the largest divisor of `steps` not above the
  request (0: the whole epoch), so every call has one shape."""
  if steps_per_call is None:
    steps_per_call = default_steps_per_call()
  if not steps_per_call or steps_per_call >= steps:
    return steps
  return max(k for k in range(1, steps_per_call + 1) if steps % k == 0)


def pad_to_batches(x, batch_size):
  """`x` padded with copies of its last row to a multiple of `batch_size`."""
  pad = -len(x) % batch_size
  if not pad:
    return x
  return np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])


def _loss_fn():
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class KerasTrainer:
  """`model.fit` one epoch at a time on a tf.data pipeline."""

  compiled_programs = None  # Counted on JAX only.

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
    ds = tf.data.Dataset.from_tensor_slices(
        epoch_batches(perm, self.batch_size))
    ds = ds.map(lambda i: (tf.gather(self._x, i), tf.gather(self._y, i)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.prefetch(2).with_options(options)

  def train_epoch(self, epoch, perm):
    """Runs one epoch over `perm`: (mean mini-batch loss, running accuracy)."""
    h = self.model.fit(self._dataset(perm), epochs=epoch + 1,
                       initial_epoch=epoch, shuffle=False,
                       verbose=1 if sys.stdout.isatty() else 0)
    return float(h.history['loss'][-1]), float(h.history['accuracy'][-1])

  def predict(self, split):
    """Inference-mode logits for the 'train' or 'test' images."""
    x = self._eval_x[split]
    logits = self.model.predict(pad_to_batches(x, self.eval_batch_size),
                                batch_size=self.eval_batch_size, verbose=0)
    return np.asarray(logits, np.float32)[:len(x)]


class JaxTrainer:
  """Jitted `lax.scan`s over device-resident data: one training program and
  one evaluation program per run."""

  def __init__(self, model, optimizer, train, test_x, batch_size,
               eval_batch_size=1000, strategy=None, steps_per_call=None):
    del strategy  # One device; several runs share a GPU as processes.
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
    self.eval_batch_size = eval_batch_size
    self.steps_per_call = steps_per_call
    optimizer.build(model.trainable_variables)
    self._x = jax.device_put(train[0])
    self._y = jax.device_put(train[1].astype(np.int32))
    self._eval_x = {
        'train': jax.device_put(pad_to_batches(train[0], eval_batch_size)),
        'test': jax.device_put(pad_to_batches(test_x, eval_batch_size))}
    self._n = {'train': len(train[0]), 'test': len(test_x)}
    loss_obj = _loss_fn()

    # Named so that JAX's compile log (JAX_LOG_COMPILES=1) shows them.
    def zhang2017_train(state, x, y, idx):
      # x and y are arguments, not closure constants, so the compiled
      # program does not embed the dataset, and runs of the same model with
      # other labels or seeds hit the persistent compilation cache.
      def step(state, i):
        tv, ntv, ov = state
        xb, yb = jnp.take(x, i, axis=0), jnp.take(y, i, axis=0)

        def loss_fn(tv):
          logits, ntv2, losses = model.stateless_call(
              tv, ntv, xb, training=True, return_losses=True)
          loss = loss_obj(yb, logits)
          return (loss + sum(losses) if losses else loss), (ntv2, logits)

        (loss, (ntv2, logits)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(tv)
        tv2, ov2 = optimizer.stateless_apply(ov, grads, tv)
        correct = jnp.sum(jnp.argmax(logits, axis=1) == yb)
        return (tv2, ntv2, ov2), (loss, correct)
      if idx.shape[0] == 1:  # No loop: XLA:CPU runs loop bodies ~17x slower.
        state, (loss, correct) = step(state, idx[0])
        return state, (loss[None], correct[None])
      return jax.lax.scan(step, state, idx)

    def zhang2017_eval(tv, ntv, xb):
      logits, _ = model.stateless_call(tv, ntv, xb, training=False)
      return logits.astype(jnp.float32)

    self._train = jax.jit(zhang2017_train, donate_argnums=(0,))
    self._eval = jax.jit(zhang2017_eval)

  @property
  def compiled_programs(self):
    """How many programs this trainer compiled: {'train': k, 'eval': k}."""
    try:  # A private JAX API: if a version lacks it, record nothing.
      return {'train': self._train._cache_size(),  # pylint: disable=protected-access
              'eval': self._eval._cache_size()}  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
      return None

  def _read_state(self):
    return ([v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables],
            [v.value for v in self.optimizer.variables])

  def _write_state(self, state):
    tv, ntv, ov = state
    for var, val in zip(self.model.trainable_variables, tv):
      var.assign(val)
    for var, val in zip(self.model.non_trainable_variables, ntv):
      var.assign(val)
    for var, val in zip(self.optimizer.variables, ov):
      var.assign(val)

  def train_epoch(self, epoch, perm):
    """Runs one epoch over `perm`: (mean mini-batch loss, running accuracy)."""
    del epoch
    batches = epoch_batches(perm, self.batch_size)
    k = chunk_steps(len(batches), self.steps_per_call)
    # Read each epoch: the loop may have restored a checkpoint.
    state = self._read_state()
    losses, correct = [], []
    for i in range(0, len(batches), k):
      state, (l, c) = self._train(state, self._x, self._y, batches[i:i + k])
      losses.append(l)
      correct.append(c)
    self._write_state(state)
    losses = np.concatenate([np.asarray(l) for l in losses])
    correct = np.concatenate([np.asarray(c) for c in correct])
    return float(losses.mean()), float(correct.sum() / batches.size)

  def predict(self, split):
    """Inference-mode logits for the 'train' or 'test' images."""
    tv, ntv, _ = self._read_state()
    x, bs = self._eval_x[split], self.eval_batch_size
    # Dispatch every batch first (asynchronous), then copy them back.
    out = [self._eval(tv, ntv, x[i:i + bs]) for i in range(0, len(x), bs)]
    return np.concatenate([np.asarray(o) for o in out])[:self._n[split]]


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
      correct = tf.reduce_sum(tf.cast(
          tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y),
          tf.float32))
      return loss, correct

    @tf.function
    def step(x, y):
      loss, correct = strategy.run(replica_step, args=(x, y))
      total = tf.distribute.ReduceOp.SUM
      return (strategy.reduce(total, loss, axis=None),
              strategy.reduce(total, correct, axis=None))

    self._step = step

  def train_epoch(self, epoch, perm):
    del epoch
    dist = self.strategy.experimental_distribute_dataset(self._dataset(perm))
    out = [self._step(x, y) for x, y in dist]
    losses = [float(l) for l, _ in out]
    seen = len(out) * self.batch_size
    return float(np.mean(losses)), float(sum(float(c) for _, c in out) / seen)

  def predict(self, split):
    x = self._eval_x[split]
    bs = self.eval_batch_size
    xp = pad_to_batches(x, bs)
    return np.concatenate([
        np.asarray(self.model(xp[i:i + bs], training=False), np.float32)
        for i in range(0, len(xp), bs)])[:len(x)]


def make(model, optimizer, train, test_x, batch_size, eval_batch_size=1000,
         strategy=None, steps_per_call=None):
  """The trainer for the current Keras backend (and strategy)."""
  if strategy is not None:
    return StrategyTrainer(model, optimizer, train, test_x, batch_size,
                           eval_batch_size, strategy)
  if keras.backend.backend() == 'jax':
    return JaxTrainer(model, optimizer, train, test_x, batch_size,
                      eval_batch_size, steps_per_call=steps_per_call)
  return KerasTrainer(model, optimizer, train, test_x, batch_size,
                      eval_batch_size)
