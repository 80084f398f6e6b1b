"""Bias and safety audit before deployment: demographic swap pairs, calibration, error severity."""
