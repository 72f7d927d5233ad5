"""Partitioned execution: several worker processes run one pipeline together.

``config`` reads who this worker is from the environment ``deltaflow spawn`` sets,
``transport`` connects the workers and moves delta batches between them (Arrow IPC over
``multiprocessing.connection`` sockets), ``placement`` decides where each operator runs and
how its inputs are partitioned, ``inputs`` splits file and S3 inputs between the workers by
path, ``combine`` pre-aggregates the rows of reduces of counts and sums before they are sent,
and ``runtime`` is the engine loop that exchanges batches and keeps every worker on the same
sequence of times. See ``docs/scaling.md``.
"""
