"""Errors of the dashboards-as-code package."""

from __future__ import annotations


class DashboardsError(Exception):
    """Base class of the dashboards package's errors."""


class StaleArtifactError(DashboardsError):
    """A committed generated file differs from what the code generates (names the file)."""
