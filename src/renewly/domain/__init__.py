"""Pure billing rules: no I/O, no clock reads. Every function here decides; none acts."""
