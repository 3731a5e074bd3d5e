"""The officer view and the monitoring page under Streamlit's AppTest, against a real API process on
a real store (tests/fixtures/view.py): what an officer sees for each kind of decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.view import ViewBackend

pytestmark = pytest.mark.integration

APP = str(Path(__file__).resolve().parents[3] / "officer_view" / "app.py")


def officer_app(backend: ViewBackend, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    monkeypatch.setenv("CREDIT_SCORER_VIEW__API_URL", backend.api_url)
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.subheader, *at.caption, *at.title, *at.info)]
    parts += [str(e.value) for e in at.error] + [str(e.value) for e in at.warning]
    return "\n".join(str(p) for p in parts)


def test_officer_pages_show_each_kind_of_decision(
    view_backend: ViewBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    refer = officer_app(view_backend, monkeypatch, application=view_backend.refer)
    assert not refer.exception, refer.exception
    shown = texts(refer)
    assert "Decision: REFER" in shown and "Rules fired" in shown and "Counter-offer" in shown
    reasons = refer.table[0].value
    assert list(reasons["code"]) == ["R01"] and "Low external credit score" in list(reasons["reason"])
    assert refer.metric[0].value == "48.0%"
    assert any(f.label == "Submit review" for f in refer.button) or "Review (REFER)" in shown
    history = refer.dataframe[-1].value
    assert set(history["application"]) == {"app-accord", "app-refer", "app-refus"}

    # the review form POSTs to /reviews; without that endpoint the API's error is shown as it is
    refer.text_input[1].input("bob")
    refer.text_area[0].input("documents checked")
    refer.button[-1].click().run()
    assert any("Review not recorded" in str(e.value) for e in refer.error)

    reviewed = officer_app(view_backend, monkeypatch, application=view_backend.reviewed)
    shown = texts(reviewed)
    assert "Decision: REFUS" in shown and "Reviewed: ACCORD by alice" in shown
    assert "Review (REFER)" not in shown

    accord = officer_app(view_backend, monkeypatch, client=str(view_backend.client))
    shown = texts(accord)
    assert "Decision history" in shown and "Main features against the population" in shown
    assert "Decision: REFER" in shown  # the client's latest decision
    assert len(accord.get("vega_lite_chart")) >= 2  # gauge + population charts

    missing = officer_app(view_backend, monkeypatch, application="nope")
    assert any("Decision not found" in str(e.value) for e in missing.error)


def test_monitoring_page_reads_the_api_metrics(view_backend: ViewBackend) -> None:
    import httpx

    httpx.post(f"{view_backend.api_url}/predict", json={"sk_id_curr": view_backend.client}, timeout=30)
    script = f"""
from officer_view import monitoring
from officer_view.api_client import ApiClient
monitoring.render(ApiClient({view_backend.api_url!r}), ["http://127.0.0.1:1/metrics"], 60.0)
"""
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["Decisions/s", "Approval rate", "Dead letters", "Lag (records)"]
    assert any("127.0.0.1:1/metrics" in str(w.value) for w in at.warning)  # an unreachable worker is named
    at.run()  # second scrape: the history has a point
    assert "1 points in memory" in texts(at)
