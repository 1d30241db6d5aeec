"""Diagnostic probes (docs/probes.md): one module per probe, named by the torch-free `catalog`."""
