"""The training loop every family shares: optimiser, schedule, checkpoints, budget."""
