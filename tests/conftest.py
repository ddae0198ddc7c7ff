import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# The suite chooses its backend, whatever the user's shell exported (the
# README's quick start exports KERAS_BACKEND=jax): TensorFlow in-process and
# in every subprocess that does not name another.
os.environ['KERAS_BACKEND'] = 'tensorflow'
# Never download a dataset, even on a machine with internet (subprocesses
# inherit it); the online path is tested with mocks (plugins_data_test.py).
os.environ['ZHANG2017_DOWNLOAD'] = '0'
# Decoded-dataset cache for this session only (subprocesses inherit it).
os.environ.setdefault('ZHANG2017_CACHE_DIR', tempfile.mkdtemp(
    prefix='zhang2017-cache-'))

# tf.test helpers (create_tempdir) read absl flags; pytest does not parse them.
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.FLAGS.mark_as_parsed()
