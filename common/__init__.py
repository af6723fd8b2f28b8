"""The ground floor: the error catalogue, the strict TOML reader, tiny network helpers.

Every package may import it; it imports no other fedstats package.
"""
