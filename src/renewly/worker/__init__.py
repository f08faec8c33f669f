"""`renewly worker`: the batches run by themselves on the clock, on one machine or many.

On PostgreSQL the batches are jobs of procrastinate's queue, shared by every worker; on SQLite
(the embedded default) one worker runs the same ticks in its own process on a timer.
"""
