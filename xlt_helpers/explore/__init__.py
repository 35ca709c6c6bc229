"""Exploring in JupyterLab: the helpers of the three exploration notebooks (docs/explore.md).

* ``languages``: a sentence and its derived form side by side (words, sub-words, ids, task labels), the
  sub-word overlap of the two corpora, Syntax's word-order statistics.
* ``model``: a pretrained model folder: its loss curve, its words and their twins in a 2-D PCA, nearest
  neighbours, fill-mask in both languages, per-layer similarity of a sentence and its derived form.
* ``results``: a report folder filtered by language, transformation, task, setting and variant, with the
  scorecard's evidence behind each verdict.
* ``widgets``: the ipywidgets controls over them (thin: every number comes from the three above).

Each module is pure functions returning tables and figures, so the tests need no widget. Nothing of the
study imports this package: it sits on top, beside the command line.
"""
