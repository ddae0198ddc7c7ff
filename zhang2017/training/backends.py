"""One epoch of SGD and batched inference, per backend, on the batch
protocol of `batches.py`.

Every trainer has `train_epoch(epoch, perm)` and `evaluate(split)`, which
returns the split's inference-mode logits and labels; the loop in
`train_lib.py` needs nothing else, whatever the dataset.

* `KerasTrainer` (TensorFlow backend): `model.fit` on tf.data pipelines from
  an inputs object: `ArrayInputs` gathers each batch from in-memory arrays,
  `imagenet.FolderInputs`/`TfdsInputs` decode streamed images.
* `StrategyTrainer` (TensorFlow, several replicas or workers): the same
  pipelines under `strategy.run`.
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

from zhang2017.data import batches


def _loss_fn():
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _kept(logits, labels):
  """Drops padding rows (label -1): (float32 logits, int64 labels)."""
  labels = np.asarray(labels, np.int64)
  keep = labels >= 0
  return np.asarray(logits, np.float32)[keep], labels[keep]


class ArrayInputs:
  """tf.data pipelines over in-memory arrays (TensorFlow backend)."""

  # Every training image is evaluated (the fitted criterion is exact).
  eval_train_index = None

  def __init__(self, ds, batch_size, eval_batch_size):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf, self.batch_size = tf, batch_size
    self.eval_batch_size = eval_batch_size
    self._splits = {'train': (ds.x_train, ds.y_train),
                    'test': (ds.x_test, ds.y_test)}
    # No tf.data autotuning: a gather needs none, and tearing an autotuned
    # pipeline down waited for a 2.56 s tick, up to 10 s at the end of an
    # epoch on 2 cores (BUILD.md "CPU speed, side by side").
    self._options = tf.data.Options()
    self._options.autotune.enabled = False
    # One copy of the data in the graph; each batch is a gather from it.
    with tf.device('/cpu:0'):
      self._x = tf.constant(ds.x_train)
      self._y = tf.constant(ds.y_train.astype(np.int32))

  def train(self, epoch, perm):
    """The epoch's full batches of (images, labels), in `perm`'s order."""
    del epoch
    tf = self._tf
    ds = tf.data.Dataset.from_tensor_slices(
        batches.epoch_batches(perm, self.batch_size))
    return ds.map(lambda i: (tf.gather(self._x, i), tf.gather(self._y, i)),
                  num_parallel_calls=2,
                  deterministic=True).prefetch(2).with_options(self._options)

  def eval(self, split):
    """Batches of (images, labels) of one shape; padding rows have label -1."""
    x, y = self._splits[split]
    pad = -len(x) % self.eval_batch_size
    y = np.concatenate([y.astype(np.int64), np.full(pad, -1)])
    return self._tf.data.Dataset.from_tensor_slices(
        (batches.pad_to_batches(x, self.eval_batch_size), y)).batch(
            self.eval_batch_size).with_options(self._options)


class KerasTrainer:
  """`model.fit` one epoch at a time on an inputs object's pipelines."""

  compiled_programs = None  # Counted on JAX only.

  def __init__(self, model, optimizer, inputs, strategy=None,
               steps_per_call=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf, self.model, self.inputs = tf, model, inputs
    # Steps per `fit` execution: one tf.while_loop runs them, so Python and
    # the per-step dispatch are paid once per call (the MLP's epoch is mostly
    # that overhead). The steps, their order and the numbers are the same.
    # 32 by default: a whole epoch in one loop was no faster, and small
    # Inception measured slower (12.3 s against 10.5 s for 23 steps).
    if steps_per_call is None:
      steps_per_call = 32
    self.steps_per_call = steps_per_call or 2**31 - 1  # 0: the epoch.
    with strategy.scope() if strategy else contextlib.nullcontext():
      model.compile(optimizer=optimizer, loss=_loss_fn(),
                    metrics=['accuracy'],
                    steps_per_execution=self.steps_per_call)
    # Evaluation runs on this process's copy of the weights.
    self._logits = tf.function(lambda x: model(x, training=False))

  def _train_data(self, epoch, perm):
    options = self._tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        self._tf.data.experimental.AutoShardPolicy.DATA)
    return self.inputs.train(epoch, perm).with_options(options)

  def train_epoch(self, epoch, perm):
    """Runs one epoch over `perm`: (mean mini-batch loss, running accuracy)."""
    h = self.model.fit(self._train_data(epoch, perm), epochs=epoch + 1,
                       initial_epoch=epoch, shuffle=False,
                       verbose=1 if sys.stdout.isatty() else 0)
    return float(h.history['loss'][-1]), float(h.history['accuracy'][-1])

  def evaluate(self, split):
    """Inference-mode (logits, labels) of the 'train' or 'test' images."""
    out = [(np.asarray(self._logits(x)), y.numpy())
           for x, y in self.inputs.eval(split)]
    return _kept(np.concatenate([o[0] for o in out]),
                 np.concatenate([o[1] for o in out]))


class JaxTrainer:
  """Jitted `lax.scan`s over device-resident data: one training program and
  one evaluation program per run."""

  def __init__(self, model, optimizer, ds, batch_size, eval_batch_size=1000,
               steps_per_call=None):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
    self.eval_batch_size = eval_batch_size
    self.steps_per_call = steps_per_call
    optimizer.build(model.trainable_variables)
    self._x = jax.device_put(ds.x_train)
    self._y = jax.device_put(ds.y_train.astype(np.int32))
    self._eval_x = {
        split: jax.device_put(batches.pad_to_batches(x, eval_batch_size))
        for split, x in (('train', ds.x_train), ('test', ds.x_test))}
    self._labels = {'train': ds.y_train, 'test': ds.y_test}
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
    idx = batches.epoch_batches(perm, self.batch_size)
    k = batches.chunk_steps(len(idx), self.steps_per_call)
    # Read each epoch: the loop may have restored a checkpoint.
    state = self._read_state()
    losses, correct = [], []
    for i in range(0, len(idx), k):
      state, (l, c) = self._train(state, self._x, self._y, idx[i:i + k])
      losses.append(l)
      correct.append(c)
    self._write_state(state)
    losses = np.concatenate([np.asarray(l) for l in losses])
    correct = np.concatenate([np.asarray(c) for c in correct])
    return float(losses.mean()), float(correct.sum() / idx.size)

  def evaluate(self, split):
    """Inference-mode (logits, labels) of the 'train' or 'test' images."""
    tv, ntv, _ = self._read_state()
    x, bs = self._eval_x[split], self.eval_batch_size
    # Dispatch every batch first (asynchronous), then copy them back.
    out = [self._eval(tv, ntv, x[i:i + bs]) for i in range(0, len(x), bs)]
    labels = self._labels[split]
    return _kept(np.concatenate([np.asarray(o) for o in out])[:len(labels)],
                 labels)


class StrategyTrainer(KerasTrainer):
  """A tf.distribute training loop (`strategy.run`) for several devices/workers.

  Keras 3's `fit` does not run under MultiWorkerMirroredStrategy
  (keras-team/keras#20585), so under a strategy the step is written out:
  per-replica loss averaged over the global batch, gradients all-reduced by
  the optimizer. Evaluation runs on each worker's own copy of the weights.
  """

  def __init__(self, model, optimizer, inputs, strategy):
    super().__init__(model, optimizer, inputs, strategy)
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
      correct = tf.reduce_sum(tf.cast(tf.equal(
          tf.argmax(logits, axis=1, output_type=tf.int32),
          tf.cast(y, tf.int32)), tf.float32))
      return loss, correct, tf.cast(tf.size(y), tf.float32)

    @tf.function
    def step(x, y):
      out = strategy.run(replica_step, args=(x, y))
      return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
              for v in out]

    self._step = step

  def train_epoch(self, epoch, perm):
    dist = self.strategy.experimental_distribute_dataset(
        self._train_data(epoch, perm))
    out = [[float(v) for v in self._step(x, y)] for x, y in dist]
    return (float(np.mean([o[0] for o in out])),
            sum(o[1] for o in out) / sum(o[2] for o in out))


def make(model, optimizer, ds, batch_size, eval_batch_size=1000,
         strategy=None, steps_per_call=None, inputs=None):
  """The trainer for the current Keras backend (and strategy).

  Args:
    model, optimizer: built under `strategy`'s scope.
    ds: the corrupted `data.Dataset` (in-memory images), unless `inputs`.
    batch_size, eval_batch_size: training and evaluation batch sizes.
    strategy: a tf.distribute strategy, or None.
    steps_per_call: training steps per compiled call (None: the backend's
      default; `KerasTrainer`: 32; 0: a whole epoch).
    inputs: TensorFlow: pipelines of a streamed dataset (ImageNet).
  """
  if keras.backend.backend() == 'jax':
    return JaxTrainer(model, optimizer, ds, batch_size, eval_batch_size,
                      steps_per_call)
  inputs = inputs or ArrayInputs(ds, batch_size, eval_batch_size)
  if strategy is not None:
    return StrategyTrainer(model, optimizer, inputs, strategy)
  return KerasTrainer(model, optimizer, inputs, steps_per_call=steps_per_call)
