"""What every binary shares: one-line errors and exit status 2 on bad input."""

import contextlib
import os
import sys

from absl import app
from absl import flags

from zhang2017.errors import UserError


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{e}; see --helpshort')


def fail(message):
  """Prints `error: message` on one line and exits with status 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def run(main):
  """app.run with flag errors and `UserError`s as one line and exit 2."""
  def wrapped(argv):
    try:
      return main(argv)
    except UserError as e:
      fail(str(e))
  app.run(wrapped, flags_parser=_parse)


@contextlib.contextmanager
def _stderr_to_devnull():
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def quiet_import_keras():
  """Imports Keras (and TensorFlow under it) without the C++ start-up lines.

  TensorFlow logs oneDNN/absl lines to stderr before it reads
  TF_CPP_MIN_LOG_LEVEL; silencing fd 2 around the import keeps a bad-input
  error to its one line. An import failure is raised again afterwards.
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  with _stderr_to_devnull():
    try:
      import keras  # pylint: disable=g-import-not-at-top,unused-import
      if keras.backend.backend() == 'tensorflow':
        import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError as e:
      error = e
    else:
      error = None
  if error is not None:
    raise error
