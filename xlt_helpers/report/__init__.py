"""The report wing: a report folder's tables in, the paper's tables, tests and figures out.

``results`` reads the report folder; ``intervals`` computes and combines 95% intervals; ``tables``
shapes cells for display; ``regressions`` relates alignment to transfer; ``verdicts`` and ``scorecard``
test the paper's findings; ``calibration`` and ``targets`` compare variants and the `cpu` scale's
targets; ``plots`` draws the figures; ``build`` assembles all of it for the aggregate notebook.
"""
