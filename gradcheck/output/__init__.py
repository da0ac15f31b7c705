"""Renderers of results: the verdict text (text), JSON (json), the run's table (table), the HTML page
(html), heat maps and error-vs-eps plots (pictures), the explanation of a failing case (explain),
and structure declarations as Python source (declaration).
A renderer only reads a Report (or an Outcome); it never calls a layer or the checker."""
