"""Errors of the synthetic-data generator. Each message names the option, file or column at fault.

Reading the real sample to build a profile raises feature_loader's MissingFileError / MissingColumnError
(the raw Home Credit tables are the feature build's input).
"""

from __future__ import annotations


class SyntheticDataError(Exception):
    """Base class of every synthetic_data error."""


class SynthError(SyntheticDataError):
    """Bad synthetic-data request (scale, seed, output folder) or unusable profile."""
