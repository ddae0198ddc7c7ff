"""One training loop and what it needs: config, trainers, checkpoints, results."""
