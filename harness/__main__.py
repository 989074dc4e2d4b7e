"""``python -m harness`` is the same as the ``gist-harness`` command."""

from harness.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
