"""Many runs: the plan, local queues and Slurm."""
