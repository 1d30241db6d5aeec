"""ratbench: a benchmarking suite for selective rationalization."""

__version__ = "0.1.0"
