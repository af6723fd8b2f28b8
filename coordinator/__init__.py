"""Planning, fan-out to nodes, combining their tables into benchmark outputs."""
