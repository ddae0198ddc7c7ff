"""The user's own datasets, beside the built-in CIFAR-10, MNIST and ImageNet.

`--dataset` takes one of (README "Your model, your data"):

* `cifar10`, `mnist`, `imagenet`: the paper's datasets (`datasets.py`);
* `tfds:NAME` or `tfds:NAME/CONFIG`: a tfds dataset already prepared under
  `--data_dir` (never downloaded), read with its supervised keys;
* `folder:PATH`: an image folder, `PATH/{train,test}/<class>/*.{png,jpg,jpeg}`.
  The class folders sorted give the label ids; train/ and test/ must hold the
  same classes (at least two). All images have one size; the images are
  grayscale (H, W, 1) when every file is grayscale, else RGB (H, W, 3) (alpha
  dropped, palettes expanded). Decoded arrays are cached like the built-ins',
  keyed by the sha256 of every file's relative path and bytes (so the
  `source` recorded with a run names the exact data);
* `package.module:function`: a function called with no arguments that
  returns uint8 images (N, H, W, C) or (N, H, W) and integer labels (N,) or
  (N, 1), as `(x_train, y_train, x_test, y_test)`, as keras.datasets'
  `((x_train, y_train), (x_test, y_test))`, or as a dict with those four keys
  and optionally `num_classes` (default: the largest label + 1).

Every one becomes a `datasets.Dataset`; a bad one is a one-line `UserError`.
"""

import hashlib
import importlib
import os
import re

import numpy as np

from zhang2017.errors import UserError

BUILTIN = ('cifar10', 'mnist', 'imagenet')
FORMS = ('cifar10, mnist, imagenet, tfds:NAME[/CONFIG], folder:PATH or '
         'package.module:function')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
_GRAY_MODES = ('1', 'L', 'LA')  # PIL modes read as one channel.
_TFDS_NAME = re.compile(r'[a-z][a-z0-9_]*(/[A-Za-z0-9_.+-]+)?\Z')
_FUNCTION = re.compile(r'[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z')
_ARRAY_KEYS = ('x_train', 'y_train', 'x_test', 'y_test')


def parse(spec):
  """Splits a `--dataset` value into (kind, argument), checking its syntax.

  Returns:
    ('builtin', name), ('tfds', 'NAME[/CONFIG]'), ('folder', PATH) or
    ('function', 'package.module:function').

  Raises:
    UserError: an unknown name or a malformed form.
  """
  if spec in BUILTIN:
    return 'builtin', spec
  if spec.startswith('tfds:'):
    if not _TFDS_NAME.match(spec[5:]):
      raise UserError(f'--dataset={spec} is not a tfds name; use '
                      'tfds:NAME or tfds:NAME/CONFIG, e.g. tfds:cifar100')
    return 'tfds', spec[5:]
  if spec.startswith('folder:'):
    if not spec[7:]:
      raise UserError('--dataset=folder: names no folder; use folder:PATH '
                      'with PATH/train/<class>/ and PATH/test/<class>/')
    return 'folder', spec[7:]
  if ':' in spec:
    if not _FUNCTION.match(spec):
      raise UserError(f'--dataset={spec} is not package.module:function; '
                      f'use one of {FORMS}')
    return 'function', spec
  raise UserError(f'--dataset={spec} is not known; use one of {FORMS}')


def check_spec(spec):
  """Raises a one-line UserError for a malformed `--dataset` (loads nothing)."""
  parse(spec)


# ---------------------------------------------------------------- folder


def _one_line(e):
  return ' '.join(str(e).split()) or type(e).__name__


def scan_folder(path):
  """Checks an image folder's layout without opening an image.

  Args:
    path: the folder of `--dataset=folder:PATH`.

  Returns:
    (root, class names, {split: [(file relative to root, label)]}).

  Raises:
    UserError: a missing folder or split, no or one class, classes that
      differ between train/ and test/, a class without images.
  """
  spec, root = f'--dataset=folder:{path}', os.path.expanduser(path)
  if not os.path.isdir(root):
    problem = 'is a file' if os.path.exists(root) else 'does not exist'
    raise UserError(f'{spec}: {root} {problem}; pass a folder holding '
                    'train/<class>/ and test/<class>/ image files')
  classes = {}
  for split in ('train', 'test'):
    d = os.path.join(root, split)
    if not os.path.isdir(d):
      raise UserError(f'{spec} has no {split}/ folder; put the images in '
                      f'{os.path.join(root, split)}/<class>/*.png (or .jpg)')
    classes[split] = sorted(e.name for e in os.scandir(d)
                            if e.is_dir() and not e.name.startswith('.'))
    if not classes[split]:
      raise UserError(f'{spec}: {split}/ holds no class folders; put the '
                      f'images in {split}/<class>/, one folder per class')
  if classes['train'] != classes['test']:
    only = [f'only in {s}/: '
            f'{", ".join(sorted(set(classes[s]) - set(classes[o]))) or "-"}'
            for s, o in (('train', 'test'), ('test', 'train'))]
    raise UserError(f'{spec}: test classes differ from training classes '
                    f'({"; ".join(only)}); give train/ and test/ the same '
                    'class folders')
  names = classes['train']
  if len(names) < 2:
    raise UserError(f'{spec} has one class ({names[0]}); the randomization '
                    'tests need at least two: add a class folder to train/ '
                    'and test/')
  files = {}
  for split in ('train', 'test'):
    files[split] = []
    for label, c in enumerate(names):
      found = sorted(f for f in os.listdir(os.path.join(root, split, c))
                     if f.lower().endswith(IMAGE_SUFFIXES)
                     and not f.startswith('.'))
      if not found:
        raise UserError(f'{spec}: {split}/{c}/ holds no .png, .jpg or .jpeg '
                        'images; add some, or remove the class from train/ '
                        'and test/')
      files[split] += [(f'{split}/{c}/{f}', label) for f in found]
  return root, names, files


def folder_key(root, files):
  """sha256 (16 hex digits) of every file's relative path, label and bytes."""
  h = hashlib.sha256()
  for split in ('train', 'test'):
    for rel, label in files[split]:
      with open(os.path.join(root, rel), 'rb') as f:
        raw = f.read()
      h.update(f'{rel}\0{label}\0{len(raw)}\0'.encode())
      h.update(raw)
  return h.hexdigest()[:16]


def read_folder(path, root, files):
  """Decodes an image folder (after `scan_folder`).

  Returns:
    (x_train, y_train, x_test, y_test): uint8 (N, H, W, C), int64 (N,).

  Raises:
    UserError: an unreadable image (named), or images of mixed sizes (one
      of each size named).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  spec = f'--dataset=folder:{path}'

  def fail(rel, e):
    raise UserError(f'{spec}: cannot read {rel} ({_one_line(e)}); replace or '
                    'remove the file') from e

  # Headers first: one size and the channels, before any array is filled.
  sizes, modes = {}, set()
  for rel, _ in files['train'] + files['test']:
    try:
      with Image.open(os.path.join(root, rel)) as img:
        size, mode = img.size, img.mode
    except Exception as e:  # pylint: disable=broad-except  # Pillow's many.
      fail(rel, e)
    sizes.setdefault(size, rel)
    modes.add(mode)
    if len(sizes) > 1:
      (a, sa), (b, sb) = [(r, s) for s, r in sizes.items()]
      raise UserError(f'{spec}: images of mixed sizes: {a} is {sa[0]}x'
                      f'{sa[1]}, {b} is {sb[0]}x{sb[1]}; resize them all to '
                      'one size')
  (width, height), = sizes
  gray = modes <= set(_GRAY_MODES)
  out = []
  for split in ('train', 'test'):
    x = np.empty((len(files[split]), height, width, 1 if gray else 3),
                 np.uint8)
    for i, (rel, _) in enumerate(files[split]):
      try:
        with Image.open(os.path.join(root, rel)) as img:
          a = np.asarray(img.convert('L' if gray else 'RGB'))
      except Exception as e:  # pylint: disable=broad-except
        fail(rel, e)
      x[i] = a[..., None] if gray else a
    out += [x, np.array([label for _, label in files[split]], np.int64)]
  return tuple(out)


# ---------------------------------------------------------------- function


def call_function(spec):
  """Imports and calls a `package.module:function` dataset, checks its arrays.

  Returns:
    ((x_train, y_train, x_test, y_test), num_classes, source): uint8
    (N, H, W, C) images, int64 labels; the source names the function and the
    sha256 of the arrays.

  Raises:
    UserError: the module or function is not found, or the arrays break the
      contract (module docstring).
  """
  module_name, fn_name = spec.split(':')
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name and (module_name + '.').startswith(e.name + '.'):
      raise UserError(f'--dataset={spec}: no module {e.name} on the Python '
                      'path; put its folder on PYTHONPATH (or run from '
                      'there)') from None
    raise UserError(f'--dataset={spec}: importing {module_name} failed '
                    f'({_one_line(e)}); install what it needs') from None
  fn = getattr(module, fn_name, None)
  if not callable(fn):
    raise UserError(f'--dataset={spec}: {module_name} '
                    f'({getattr(module, "__file__", "?")}) has no function '
                    f'{fn_name}; name a function defined there')
  return check_arrays(spec, fn())


def check_arrays(spec, out):
  """The contract of a function dataset (module docstring); see call_function."""
  def bad(problem):
    return UserError(f'--dataset={spec}: {problem}; return uint8 images '
                     '(N, H, W, C) and int labels (N,) as (x_train, y_train, '
                     'x_test, y_test) (README "Your model, your data")')

  num_classes = None
  if isinstance(out, dict):
    missing = [k for k in _ARRAY_KEYS if k not in out]
    if missing:
      raise bad(f'the dict lacks {", ".join(missing)}')
    num_classes = out.get('num_classes')
    parts = [out[k] for k in _ARRAY_KEYS]
  elif (isinstance(out, (tuple, list)) and len(out) == 2
        and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in out)):
    parts = [*out[0], *out[1]]  # keras.datasets' ((x, y), (x, y)).
  elif isinstance(out, (tuple, list)) and len(out) == 4:
    parts = list(out)
  else:
    raise bad(f'the function returned {type(out).__name__}')
  arrays = []
  for split, x, y in (('train', *parts[:2]), ('test', *parts[2:])):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
      x = x[..., None]  # Grayscale without a channel axis.
    if y.ndim == 2 and y.shape[1] == 1:
      y = y[:, 0]
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or not len(x):
      raise bad(f'x_{split} has shape {x.shape} and y_{split} {y.shape}')
    if x.dtype != np.uint8:
      raise bad(f'x_{split} has dtype {x.dtype}')
    if not np.issubdtype(y.dtype, np.integer):
      raise bad(f'y_{split} has dtype {y.dtype}')
    arrays += [x, y.astype(np.int64)]
  if arrays[0].shape[1:] != arrays[2].shape[1:]:
    raise bad(f'training images are {arrays[0].shape[1:]}, test images '
              f'{arrays[2].shape[1:]}')
  top = int(max(arrays[1].max(), arrays[3].max())) + 1
  num_classes = top if num_classes is None else num_classes
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise bad(f'num_classes is {num_classes!r}, not an integer >= 2')
  if min(arrays[1].min(), arrays[3].min()) < 0 or top > num_classes:
    raise bad(f'labels lie outside 0..{num_classes - 1}')
  h = hashlib.sha256()
  for a in arrays:
    h.update(f'{a.shape}'.encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return tuple(arrays), int(num_classes), f'{spec} (sha256 {h.hexdigest()[:16]})'
