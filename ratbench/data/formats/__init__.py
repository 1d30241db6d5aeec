"""Strict readers for the public file formats; every error names the file and the 1-based line."""
