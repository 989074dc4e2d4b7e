"""MkDocs hook: adds the reference pages generated from the code (``harness.reference``).

The pages exist only in the build (``File.generated``, MkDocs 1.6), so nothing generated is
committed and nothing can drift from the registries, the CLI parser or the schema.
"""

from __future__ import annotations

from mkdocs.structure.files import File, Files

from harness.reference import pages


def on_files(files: Files, config) -> Files:
    """Adds every generated page to the site's files (before the navigation is built)."""
    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files
