"""Sweeps on Slurm: one job array through submitit, one task per run.

Each array task runs the run's training command (`sweep_lib.command`) into
its run folder, as the local launcher does, so the folder layout, skipping
finished runs and resuming from a checkpoint are the same. A task's state is
read from its run folder (result.json) and from `squeue`, never from `sacct`,
which needs Slurm's accounting daemon.

Run folders, the flagfiles, this checkout and its Python must be on storage
that every node sees at the same paths. A submitted run records its array
task in `<run folder>/slurm_job`, so that submitting again while it is still
queued or running is refused instead of training twice into one folder.
"""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time

from zhang2017.training import results
from zhang2017.sweeps import sweep_lib
from zhang2017.errors import UserError

JOB_FILE = 'slurm_job'  # In a run folder: the array task that last ran it.


def check_available():
  """Raises UserError unless Slurm's commands and submitit are here."""
  missing = [c for c in ('sbatch', 'squeue') if shutil.which(c) is None]
  if missing:
    raise UserError(f'--launcher=slurm needs Slurm\'s {" and ".join(missing)} '
                    'on PATH; run on a cluster\'s login node, or use '
                    '--launcher=local')
  try:
    import submitit  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise UserError('--launcher=slurm needs submitit: pip install '
                    '"zhang2017[slurm]" (or pip install submitit)') from e


def _ignore_usr2():
  # In the training process: Slurm signals every process of the step, and the
  # warning of a time limit or preemption is the task's to handle (it
  # requeues); training goes on until the requeue ends it.
  signal.signal(signal.SIGUSR2, signal.SIG_IGN)


class Task:
  """One array task: trains one run into its folder (a submitit callable).

  Its `checkpoint` makes submitit requeue the task when Slurm warns of a time
  limit or preemption (SIGUSR2); the requeued task runs the same command,
  which resumes from the run's last epoch checkpoint.
  """

  def __init__(self, extra=(), env=None):
    self.extra = tuple(extra)
    self.env = dict(env or {})

  def __call__(self, run):
    """Trains `run`; returns its result, or raises if it ended without."""
    os.makedirs(run.run_dir, exist_ok=True)
    job = os.environ.get('SLURM_ARRAY_JOB_ID')
    job = (f'{job}_{os.environ.get("SLURM_ARRAY_TASK_ID")}' if job else
           os.environ.get('SLURM_JOB_ID'))
    with open(os.path.join(run.run_dir, 'train.log'), 'a') as logf:
      logf.write(f'slurm: job {job} on {socket.gethostname()}\n')
      logf.flush()
      p = subprocess.Popen(
          sweep_lib.command(run, self.extra), stdout=logf,
          stderr=subprocess.STDOUT, env=sweep_lib.run_env(self.env),
          cwd=results.ROOT, preexec_fn=_ignore_usr2)
      try:
        code = p.wait()
      finally:  # Requeued or ended: no training outlives its task.
        if p.poll() is None:
          p.kill()
          p.wait()
    res = results.load(run.run_dir)
    if res is None:
      raise RuntimeError(f'{run.run_dir}: training exited with {code} and no '
                         'result.json; see its train.log')
    return res

  def checkpoint(self, run):
    """What submitit requeues: this task again (the run resumes itself)."""
    import submitit  # pylint: disable=g-import-not-at-top
    return submitit.helpers.DelayedSubmission(self, run)


def queued():
  """{task id: state} of this user's queued and running Slurm tasks, array
  tasks one by one (`<job>_<index>`)."""
  p = subprocess.run(['squeue', '-h', '-r', '-u', getpass.getuser(),
                      '-o', '%i %T'], capture_output=True, text=True,
                     check=False)
  if p.returncode:
    raise UserError(f'squeue failed: {p.stderr.strip()}; is Slurm up?')
  return dict(line.split() for line in p.stdout.splitlines() if line.strip())


def _job_of(run):
  path = os.path.join(run.run_dir, JOB_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return f.read().strip()


def submit(runs, folder, extra=(), env=None, log=print, **params):
  """Submits every unfinished run as one Slurm job array.

  Args:
    runs: `sweep_lib.Run`s; those with a result.json are skipped.
    folder: submitit's folder (its pickles and the tasks' Slurm logs), on
      storage the nodes share.
    extra: flags added to every training command.
    env: environment variables added for every run.
    log: where progress lines go.
    **params: submitit's Slurm parameters (partition, time, cpus_per_task,
      gpus_per_task, mem, array_parallelism, job_name,
      additional_parameters).

  Returns:
    (job id or None when nothing was left to run, [(task id, run)]).

  Raises:
    UserError: a run is still queued or running from an earlier submission,
      or Slurm refused the job.
  """
  todo = [r for r in runs if results.load(r.run_dir) is None]
  log(f'{len(runs)} runs, {len(runs) - len(todo)} already complete, '
      f'{len(todo)} to submit')
  if not todo:
    return None, []
  live = queued()
  busy = sorted({j for j in map(_job_of, todo) if j in live})
  if busy:
    raise UserError(f'{len(busy)} of these runs are still queued or running '
                    f'as Slurm tasks {", ".join(busy)}; wait for them (or '
                    f'scancel them), then run the same command again')
  import submitit  # pylint: disable=g-import-not-at-top
  executor = submitit.SlurmExecutor(folder=os.path.join(folder, '%j'))
  # The checkout on the nodes' import path: the task unpickles this module.
  setup = [f'export PYTHONPATH={results.ROOT}${{PYTHONPATH:+:$PYTHONPATH}}']
  try:
    executor.update_parameters(setup=setup, **params)
    jobs = executor.map_array(Task(extra, env), todo)
  except (ValueError, subprocess.CalledProcessError) as e:
    raise UserError(f'Slurm refused the job: {e}') from e
  tasks = [(j.job_id, r) for j, r in zip(jobs, todo)]
  for task, r in tasks:
    os.makedirs(r.run_dir, exist_ok=True)
    with open(os.path.join(r.run_dir, JOB_FILE), 'w') as f:
      f.write(task + '\n')
  job = tasks[0][0].split('_')[0]
  at_once = min(len(todo), params.get('array_parallelism', len(todo)))
  log(f'submitted Slurm job {job}: {len(todo)} tasks, at most {at_once} at '
      f'once; Slurm logs in {os.path.join(folder, job)}_<task>/')
  for task, r in tasks:
    log(f'  {task} {r.experiment}/{r.row} seed {r.seed}')
  return job, tasks


def wait(job, tasks, log=print, poll_s=5.0):
  """Waits until no task of `job` is queued or running, logging progress.

  Returns:
    The runs of `tasks` that ended without a result.json.
  """
  start, last = time.time(), None
  while True:
    states = [s for t, s in queued().items()
              if t == job or t.startswith(f'{job}_')]
    done = sum(results.load(r.run_dir) is not None for _, r in tasks)
    line = (f'{done}/{len(tasks)} finished, {states.count("RUNNING")} '
            f'running, {len(states) - states.count("RUNNING")} waiting')
    if line != last:
      log(f'[{time.time() - start:.0f}s] job {job}: {line}')
      last = line
    if not states:
      return [r for _, r in tasks if results.load(r.run_dir) is None]
    time.sleep(poll_s)
