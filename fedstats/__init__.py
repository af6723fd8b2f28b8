"""The fedstats command line and operator tools (demo, synthetic data, certificates)."""
