"""``python -m unkai.operator``: see :mod:`unkai.operator._main`."""

from unkai.operator._main import main

main()
