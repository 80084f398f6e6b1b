"""Model monitoring after deployment: per-analysis statistics, drift against a reference, reviewer overrides.

Pure functions (no database, no UI): :mod:`~engine.monitoring.profile` (what is stored per analysis),
:mod:`~engine.monitoring.table` (many of them as arrays), :mod:`~engine.monitoring.drift` (KL input drift,
chi-squared prediction drift, window means), :mod:`~engine.monitoring.overrides` (override rates, label drift),
:mod:`~engine.monitoring.reference` (a model's reference profile) and :mod:`~engine.monitoring.report` (the
report with thresholds and alerts). Stored rows are read and written by ``db.stats``; the ``monitor`` verb lives
in ``db.monitor`` because it needs the database (see ``docs/monitoring.md``).

Only :mod:`~engine.monitoring.profile` (numpy only) is imported here: the pipeline uses it on every note, and the
rest (scipy) loads when a report is built.
"""

from engine.monitoring.profile import profile_analysis, token_summary

__all__ = ["profile_analysis", "token_summary"]
