"""``onlstm serve``: a local web viewer of trees, distances and treebank errors.

- :mod:`.service` -- the work behind the JSON API, without the web framework: the models
  and treebanks the server may use (named at start, loaded lazily once), parsing sentences
  (:func:`onlstm.tasks.parse.parse`), and a treebank's ``parse-eval`` report and
  per-sentence comparisons (:mod:`onlstm.tasks.parse_eval`, :mod:`onlstm.metrics`),
  cached per (treebank, model, decoder, distance);
- :mod:`.app` -- :func:`~.app.create_app`, the FastAPI application: ``/api/...`` routes,
  JSON errors, and the page (``static/``: one HTML, one script, one style sheet; no
  network fetch).

Trees are drawn as SVG on the server by :mod:`onlstm.tree_svg` (the demo's report.html
uses the same drawings). Importing this package does not import FastAPI; :mod:`.app` does.
"""
