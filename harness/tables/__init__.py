"""The paper's table configs, shipped as package data: `table1.toml`..`table4.toml`, `mirage.toml`.

Read by `harness.config.load_table`; the keys are documented in `table1.toml`.
"""
