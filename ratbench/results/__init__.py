"""RunRecord I/O, aggregation over seeds, paired tests, published numbers and table rendering."""
