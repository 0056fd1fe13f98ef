"""``python -m unkai.langhost [flags] ENGINE_ADDRESS``: serve the language host."""

from unkai.langhost._server import main

main()
