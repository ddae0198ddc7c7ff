r"""Writes a generated image folder for `--dataset=folder:PATH`.

  python examples/make_folder.py /tmp/shapes --classes=2 --size=32

PATH/{train,test}/<class>/NNNN.png: class k's images are noisy squares of
one colour per class at random places, so a small model learns them in a
few epochs (and memorizes them with --labels=random). Seeded: the same
flags write the same files.
"""

import argparse
import os

import numpy as np
from PIL import Image


def make(path, classes=2, size=32, train=100, test=20, seed=0):
  """Writes `train` and `test` images per class; returns the class names."""
  rng = np.random.default_rng(seed)
  colours = rng.integers(0, 256, (classes, 3))
  names = [f'class{k}' for k in range(classes)]
  for split, n in (('train', train), ('test', test)):
    for k, name in enumerate(names):
      folder = os.path.join(path, split, name)
      os.makedirs(folder, exist_ok=True)
      for i in range(n):
        image = rng.normal(128, 40, (size, size, 3))
        side = size // 2
        top, left = rng.integers(0, size - side + 1, 2)
        image[top:top + side, left:left + side] = colours[k]
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f'{i:04d}.png'))
  return names


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('path', help='folder to write (train/ and test/)')
  parser.add_argument('--classes', type=int, default=2)
  parser.add_argument('--size', type=int, default=32, help='height = width')
  parser.add_argument('--train', type=int, default=100,
                      help='training images per class')
  parser.add_argument('--test', type=int, default=20,
                      help='test images per class')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  if args.classes < 1 or args.size < 4 or args.train < 1 or args.test < 1:
    parser.error('--classes, --train and --test must be at least 1, --size 4')
  names = make(args.path, args.classes, args.size, args.train, args.test,
               args.seed)
  print(f'{args.path}: {len(names)} classes, {args.train} training and '
        f'{args.test} test images each, {args.size}x{args.size} RGB PNG')


if __name__ == '__main__':
  main()
