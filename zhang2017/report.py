r"""Rebuilds results/README.md, the table CSVs and the figures from result files.

  python -m zhang2017.report [--results_dir=results]

Nothing here is typed by hand: every number comes from a result.json (ours)
or from `paper.py` (the paper's). A row without a complete, full-size run says
"not run"; a run on a --train_size subset is never shown as a paper row.
"""

import os

from absl import flags

from zhang2017 import cli
from zhang2017.reporting import report_lib
from zhang2017.training import results

_RESULTS_DIR = flags.DEFINE_string('results_dir', None,
                                   'Default: <repo>/results.')
_FLAGS_DIR = flags.DEFINE_string('flags_dir', None, 'Default: <repo>/flags.')


def main(argv):
  del argv
  results_dir = _RESULTS_DIR.value or os.path.join(results.ROOT, 'results')
  cli.check_input_folder('results_dir', results_dir,
                         'holding <experiment>/<row>/seed<k>/result.json')
  cli.check_input_folder('flags_dir', _FLAGS_DIR.value,
                         'holding <experiment>/<row>.flags')
  report_lib.build(results_dir,
                   _FLAGS_DIR.value or os.path.join(results.ROOT, 'flags'))
  print(f'wrote {os.path.join(results_dir, "README.md")}')


if __name__ == '__main__':
  cli.run(main)
