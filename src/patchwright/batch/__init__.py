"""`agent batch`: many `agent fix` runs, each its own process, locally or on a Ray cluster."""
