"""Use cases, one function each: load a snapshot, decide with the domain, apply in one transaction."""
