"""Dataset families: one module per file format (beer, hotel, synth, toy, eraser), discovered on import.

A family owns where its files live under the data root, its strict reader, `data import`, `data fetch` and
the how-to-get text; the datasets themselves are entries in `ratbench.data.catalog`.
"""
