"""The documentation site's generated pages (docs/reference/*.md) and produced console
examples, written from the code: `python -m deploykit.docs` (`--check` only compares).

Each generator is a pure function returning a page's text; tests/docs compares the
files on disk with them, so a page never drifts from the code it describes.
"""
