"""What every binary shares: one-line errors and exit status 2 on bad input."""

import contextlib
import dataclasses
import importlib.util
import logging
import math
import os
import sys
import typing

from absl import app
from absl import flags

from zhang2017.training import config as config_lib
from zhang2017.errors import UserError

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, str: flags.DEFINE_string}


def define_config_flags(flag_values=flags.FLAGS):
  """Defines one flag per `config.Config` field, help text from the field."""
  hints = typing.get_type_hints(config_lib.Config)
  for f in dataclasses.fields(config_lib.Config):
    kind = hints[f.name]
    kind = next((a for a in typing.get_args(kind) if a is not type(None)),
                kind)  # Optional[X] -> X
    help_text, choices = f.metadata['help'], f.metadata['choices']
    if choices:
      flags.DEFINE_enum(f.name, f.default, choices, help_text,
                        flag_values=flag_values)
    else:
      _DEFINE[kind](f.name, f.default, help_text, flag_values=flag_values)


def config_from_flags(flag_values=flags.FLAGS):
  """A validated `Config` from the parsed flags of `define_config_flags`."""
  return config_lib.validate(config_lib.Config(**{
      f.name: flag_values[f.name].value
      for f in dataclasses.fields(config_lib.Config)}))


def config_from_argv(argv):
  """A validated `Config` from a command line (argv[0] is the program), as
  the training binary reads it, without touching the global flags.

  Raises:
    UserError: an unknown flag, a bad value, or a stray argument.
  """
  fv = flags.FlagValues()
  define_config_flags(fv)
  try:
    rest = fv(list(argv))
  except flags.Error as e:
    raise UserError(flag_error_message(e)) from e
  check_no_arguments(rest)
  return config_from_flags(fv)


def check_no_arguments(argv):
  """Raises UserError for anything left on the command line after flags."""
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {" ".join(argv[1:])}; flags take '
                    'the form --name=value')


def parse_flagfile(path):
  """A flagfile's `Config` (defaults plus its flags), read by absl's parser.

  Raises:
    UserError: a flag that is not a `Config` field, or a bad value.
  """
  fv = flags.FlagValues()
  define_config_flags(fv)
  try:
    fv(['flagfile', f'--flagfile={path}'])
  except flags.Error as e:
    raise UserError(f'{path}: {e}') from e
  return config_lib.Config(**{f.name: fv[f.name].value
                              for f in dataclasses.fields(config_lib.Config)})


def flag_error_message(error):
  """absl's parse error as one line naming the fix."""
  cause = error.__context__
  if isinstance(error, flags.CantOpenFlagFileError) and isinstance(
      cause, OSError):  # absl's own text starts 'ERROR:: '.
    return (f'cannot read --flagfile={cause.filename} ({cause.strerror}); '
            'pass the path of a flags file')
  return f'{error}; see --helpshort'


def check_finite_floats(flag_values=flags.FLAGS):
  """Raises UserError for a float flag set to nan or +-inf.

  absl's bounds let nan through (every comparison with nan is false), and
  no flag of these binaries means anything at infinity.
  """
  for name in sorted(flag_values):
    flag = flag_values[name]
    value = flag.value
    if (isinstance(flag.parser, flags.FloatParser) and value is not None
        and not math.isfinite(value)):
      default = ('' if flag.default is None
                 else f', e.g. the default --{name}={flag.default:g}')
      raise UserError(f'--{name}={value} is not a finite number; use a '
                      f'number{default}')


def check_output_folder(flag, path):
  """Raises UserError unless `path` is a folder, or one can be made there.

  Creates nothing: a binary checks its output folder before its (long)
  work, and a run that stops on bad input leaves nothing behind.
  """
  existing = os.path.abspath(path)
  while not os.path.lexists(existing):  # The nearest part that exists.
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f'--{flag}={path}: {existing} is a file, not a folder; '
                    'choose a writable folder')
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError(f'--{flag}={path}: {existing} is not writable; choose a '
                    'writable folder')


def check_input_folder(flag, path, holding):
  """Raises UserError unless `path` (when given) is an existing folder."""
  if path is None or os.path.isdir(path):
    return
  problem = 'is a file' if os.path.exists(path) else 'does not exist'
  raise UserError(f'--{flag}={path} {problem}; pass the folder {holding}')


def _parse(argv):
  try:
    rest = flags.FLAGS(argv)
    check_finite_floats()
    return rest
  except flags.Error as e:
    fail(flag_error_message(e))
  except UserError as e:
    fail(str(e))


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


def quiet_import_keras(tensorflow_too=False):
  """Imports Keras (and TensorFlow under it) without the C++ start-up lines.

  TensorFlow logs oneDNN/absl lines to stderr before it reads
  TF_CPP_MIN_LOG_LEVEL; silencing fd 2 around the import keeps a bad-input
  error to its one line. An import failure is raised again afterwards.
  `tensorflow_too`: TensorFlow where it is installed, on any backend
  (`keras.utils.set_random_seed` imports it, with those lines, before
  the model's checks).
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  with _stderr_to_devnull():
    try:
      import keras  # pylint: disable=g-import-not-at-top,unused-import
      if keras.backend.backend() == 'tensorflow' or (
          tensorflow_too and importlib.util.find_spec('tensorflow')):
        import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError as e:
      error = e
    else:
      error = None
  if error is not None:
    raise error
  # JAX logs at INFO that it found no TPU; not news to anyone.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
