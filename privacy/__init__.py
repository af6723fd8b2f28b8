"""DP mechanisms, budget arithmetic, disclosure rules and estimators (pure)."""
