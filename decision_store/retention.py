"""The retention cut-off: records decided before ``now`` minus N calendar months are purged."""

from __future__ import annotations

import calendar
from datetime import datetime


def cutoff(now: datetime, months: int) -> datetime:
    """``now`` minus ``months`` calendar months (the day clamped to the target month's last day)."""
    index = now.year * 12 + (now.month - 1) - months
    year, month = divmod(index, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)
