"""Executors run a list of planned runs: `serial`, `local` (a process pool on this machine) and `ray`.

One protocol (`base.Executor`), registered by name; `ratbench.api.run_grid` picks one.
"""
