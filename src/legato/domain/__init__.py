"""The shared vocabulary every layer speaks, below them all: run, task and backfill states with
their transition tables (``states``), the immutable records that cross layers and the store's
errors (``records``), where a result is kept (``refs``), and run ids (``ids``).

Pure Python and cheap to import; nothing here does I/O or imports another part of Legato.
"""
