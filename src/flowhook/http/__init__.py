"""The web layer: routes and the mapping of errors to HTTP answers, nothing else."""
