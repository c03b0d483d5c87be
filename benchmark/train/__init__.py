"""Training: one plain loop for every variant, its convergence rule, and a bare-PyTorch reference loop."""
