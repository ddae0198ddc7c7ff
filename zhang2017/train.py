r"""Trains a model (the paper's, resnet18, vgg11_bn or a plug-in
package.module:function) on (randomized) data and writes its result.

  python -m zhang2017.train --dataset=cifar10 --labels=random
  PYTHONPATH=examples python -m zhang2017.train --model=mymodels:tiny_cnn
  python -m zhang2017.train --flagfile=flags/table1/mlp_3x512_random.flags \
      --output_dir=/tmp/run

Without --output_dir the run goes to runs/<dataset>-<model>-<labels>...
-seed<k>/ (printed on the first line). Every flag is a field of
`config.Config`, with its help text there.

Defaults are the paper's (Appendix A). Bad input exits with status 2 and one
line; a killed run resumes when started again with the same flags.
"""

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from zhang2017 import cli

cli.quiet_import_keras(tensorflow_too=True)

from zhang2017.training import results
from zhang2017.training import train_lib

cli.define_config_flags()
flags.adopt_module_key_flags(cli)  # --help lists them (defined in cli).


def main(argv):
  results.git_commit()  # Record the code as it is at the start.
  cli.check_no_arguments(argv)
  cfg = cli.config_from_flags()
  train_lib.train_and_evaluate(cfg)


if __name__ == '__main__':
  cli.run(main)
