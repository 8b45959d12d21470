"""Runs and what they measure: evaluation, metrics, the run store, sweeps, calibration, provenance and transfer."""
