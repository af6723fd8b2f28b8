"""The HTML report, one self-contained page.

From the bottom up: ``labels``, ``escaping`` and ``charts``, ``blocks`` (the rows of one
indicator with their places in the plan's tables), ``compare`` (a city's gap against the
pooled gap), ``findings`` (what each section shows), ``markup`` (tables and dot charts as
HTML in one pass) and ``page`` (the templates).
"""
