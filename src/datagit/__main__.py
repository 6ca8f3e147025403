"""``python -m datagit``: the same CLI as the ``datagit`` console script."""

from datagit.cli import main

if __name__ == "__main__":
    main()
