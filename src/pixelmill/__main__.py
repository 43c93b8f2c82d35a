"""``python -m pixelmill``: the command line. Guarded, as processes started with ``spawn``
(the lab's data loaders) import the main module again."""

from pixelmill.cli import main

if __name__ == "__main__":
    main()
