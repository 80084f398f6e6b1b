"""Test support shared by tests/ and bench/: a seeded feedback store, a throwaway PostgreSQL, the app on a port.

Imported as ``support`` (pytest puts ``tests/`` on the path; ``bench/`` and subprocesses insert it), since a
stray top-level ``tests`` package in the environment shadows ``tests.support``.
"""
