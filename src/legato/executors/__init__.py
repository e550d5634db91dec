"""Executors run task attempts: a local pool of worker processes (or threads), and Dask.

They share one small interface (``executors.interface.Executor``): submit an attempt, wait
for outcomes, kill an attempt. The engine never cares where an attempt runs.
"""
