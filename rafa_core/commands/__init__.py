"""Small adapters that give entry points without one a ``main(argv) -> int`` for ``python -m rafa_core``."""
