"""livr_core package."""
