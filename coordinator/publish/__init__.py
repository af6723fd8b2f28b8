"""The publishing floor: the combined rows written as CSV, Parquet, SDMX and an HTML report.

From the bottom up: ``numbers`` (how every output writes a number), ``outcome`` (what
the floor reads of a query), ``tables`` (CSV and Parquet), ``sdmx``, ``summary`` (the
terminal), the ``report`` package (HTML), and ``outputs`` (every format at once). The
floor sits above the rows (``coordinator.rows``) that ``coordinator.combine`` makes and
imports nothing back from the pipeline that produced them.
"""
