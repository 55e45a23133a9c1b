"""Training: the step, the engine around it, logging and run folders."""
