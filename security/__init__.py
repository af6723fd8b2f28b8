"""Certificates, signing and TLS helpers: identity and integrity, no differential privacy."""
