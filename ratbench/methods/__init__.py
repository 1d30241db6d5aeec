"""Methods: one module per method over the shared engine (`base.Method`), plus the torch-free catalog.

This package's `__init__` imports nothing heavy: `catalog` names every method without importing torch; a
method's module (and torch) is imported when a run is built.
"""
