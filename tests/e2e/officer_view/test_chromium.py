"""Both pages in a real headless Chromium: the officer view of a REFER decision and the monitoring
page, served by ``credit-scorer view serve`` against a real API process on a real store. Screenshots go
to var/screenshots/ (ignored by git)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.services import ViewProcess
from tests.fixtures.chromium import Chromium
from tests.fixtures.view import ViewBackend

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"


def test_both_pages_render_in_chromium(
    view_backend: ViewBackend, chromium_browser: Chromium, tmp_path: Path
) -> None:
    with ViewProcess(view_backend.settings, view_backend.api_url, log_path=tmp_path / "view.log") as view:
        view.start(timeout_s=60)
        officer_png = SCREENSHOTS / "officer.png"
        expected = ["Decision: REFER", "Rules fired", "Counter-offer", "Low external credit score",
                    "Review (REFER)", "Decision history", "4 of 4 records"]  # fmt: skip
        text = chromium_browser.capture(
            f"{view.url}/?application={view_backend.refer}", expected, officer_png
        )
        missing = [e for e in expected if e not in text]
        assert not missing, f"officer page lacks {missing}; it shows:\n{text[:2000]}"
        assert officer_png.stat().st_size > 20_000  # a drawn page, not a blank one

        monitoring_png = SCREENSHOTS / "monitoring.png"
        expected = [
            "Monitoring",
            "Decisions/s",
            "Approval rate",
            "Dead letters",
            "Lag (records)",
            "Latency (ms)",
        ]
        text = chromium_browser.capture(f"{view.url}/monitoring", expected, monitoring_png)
        missing = [e for e in expected if e not in text]
        assert not missing, f"monitoring page lacks {missing}; it shows:\n{text[:2000]}"
        assert monitoring_png.stat().st_size > 20_000
