"""Synthetic Home Credit raw tables at any scale (`credit-scorer data synth`), from a committed profile."""
