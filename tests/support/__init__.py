"""Helpers shared by the tests: the test federation's PKI (`pki`), real nodes and
coordinators (`nodes`), synthetic cities made by the project (`cities`) and the reference
microdata beside the repository (`reference`). Fixtures live in ``tests/conftest.py``."""
