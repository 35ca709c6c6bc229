"""The report wing: a report folder's tables in, the paper's tables, tests and figures out.

``results`` reads the report folder; ``intervals`` computes and combines 95% intervals; ``tables``
shapes cells for display; ``regressions`` relates alignment to transfer; ``verdicts`` and ``scorecard``
test the paper's findings; ``chance`` makes a test built on a classifier at chance or collapsed
inconclusive; ``narrative`` words the verdicts; ``reference`` reads other grids' measurements from
docs/results/reference.csv; ``calibration`` and ``targets`` compare variants and the `cpu` scale's
targets; ``curves`` reads training losses; ``plots`` draws the figures; ``provenance`` records what
produced a report; ``build`` assembles all of it for the aggregate notebook.
"""
