"""Harmonised variables, code lists, the indicator catalogue and table specs (pure)."""
