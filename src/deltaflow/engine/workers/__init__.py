"""Partitioned execution: several worker processes run one pipeline together.

``config`` reads who this worker is from the environment ``deltaflow spawn`` sets,
``transport`` connects the workers and moves delta batches between them (Arrow IPC over
``multiprocessing.connection`` sockets), ``placement`` decides where each operator runs and
how its inputs are partitioned, and ``runtime`` is the engine loop that exchanges batches and
keeps every worker on the same sequence of times. See ``docs/scaling.md``.
"""
