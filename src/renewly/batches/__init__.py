"""Running batches: the scheduler, slices, parking rows, stopping on Ctrl-C."""
