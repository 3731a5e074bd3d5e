"""The credit officer's page: search a client or an application; for a decision, the probability on a
gauge against the threshold, the reasons, rules and counter-offer (when the record has them), the
client's main features against the population, the client's history, and the review form for REFER.

Fields are read with ``.get``: decisions of every contract version show what they carry.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from officer_view import charts
from officer_view.api_client import ApiCallError, ApiClient


def _reasons_table(reasons: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in reasons:
        if r.get("code") or r.get("text"):
            rows.append({"code": r.get("code"), "reason": r.get("text"), "feature": r.get("feature")})
        else:
            rows.append(
                {
                    "feature": r.get("feature"),
                    "value": str(r.get("value")),
                    "contribution": r.get("contribution"),
                }
            )
    return pd.DataFrame(rows)


def show_decision(api: ApiClient, record: dict[str, Any], review: dict[str, Any] | None) -> None:
    doc = record.get("document", {})
    label = doc.get("decision", record.get("decision"))
    pd_value = float(doc.get("probability_default", record.get("probability_default", 0.0)))
    threshold = float(doc.get("threshold", 0.5))
    st.subheader(f"Decision: {label}")
    left, right = st.columns([1, 1])
    with left:
        st.altair_chart(charts.gauge(pd_value, threshold), width="content")
    with right:
        st.metric(
            "Probability of default", f"{pd_value:.1%}", f"threshold {threshold:.1%}", delta_color="off"
        )
        st.caption(
            f"application {doc.get('application_id')} · client {doc.get('sk_id_curr')} · model "
            f"{doc.get('model_version')} · policy {doc.get('policy_version') or '—'} · "
            f"decided {doc.get('decided_at')}"
        )
    st.markdown("#### Reasons")
    reasons = doc.get("reasons") or []
    if reasons:
        st.table(_reasons_table(reasons).set_index(pd.RangeIndex(1, len(reasons) + 1)))
    else:
        st.write("No reason recorded for this decision.")
    if doc.get("rules"):
        st.markdown("#### Rules fired")
        st.table(pd.DataFrame([r if isinstance(r, dict) else {"rule": r} for r in doc["rules"]]))
    if doc.get("counter_offer"):
        st.markdown("#### Counter-offer")
        st.json(doc["counter_offer"])
    if review is not None:
        verdict = review.get("document", {}).get("review", {})
        st.info(
            f"Reviewed: {review.get('decision')} by {verdict.get('reviewer')} — {verdict.get('reason')} "
            f"({verdict.get('reviewed_at', review.get('decided_at'))})"
        )
    elif label == "REFER":
        review_form(api, str(doc.get("application_id")))


def review_form(api: ApiClient, application_id: str) -> None:
    st.markdown("#### Review (REFER)")
    with st.form("review"):
        verdict = st.radio("Verdict", ["ACCORD", "REFUS"], horizontal=True)
        reviewer = st.text_input("Reviewer")
        reason = st.text_area("Reason")
        sent = st.form_submit_button("Submit review")
    if sent:
        try:
            api.review(application_id, verdict, reviewer, reason)
            st.success("Review recorded.")
        except ApiCallError as exc:
            st.error(f"Review not recorded: {exc}")


def show_features(api: ApiClient, sk_id_curr: int) -> None:
    st.markdown("#### Main features against the population")
    try:
        body = api.client_features(sk_id_curr)
    except ApiCallError as exc:
        st.warning(f"Features unavailable: {exc}")
        return
    features = body.get("features", [])
    if not features:
        st.write("The model card has no population reference.")
        return
    cols = st.columns(2)
    for i, f in enumerate(features[:6]):
        with cols[i % 2]:
            st.altair_chart(charts.population(f["name"], f["population"], f.get("value")), width="stretch")


def show_history(api: ApiClient, sk_id_curr: int) -> list[dict[str, Any]]:
    st.markdown("#### Decision history")
    try:
        page = api.client_decisions(sk_id_curr, limit=50)
    except ApiCallError as exc:
        st.warning(f"History unavailable: {exc}")
        return []
    items = page.get("items", [])
    table = pd.DataFrame(
        [
            {
                "application": i["application_id"],
                "kind": i["kind"],
                "decision": i["decision"],
                "P(default)": i["probability_default"],
                "model": i["model_version"],
                "decided at": i["decided_at"],
            }
            for i in items
        ]
    )
    st.dataframe(table, hide_index=True)
    st.caption(f"{len(items)} of {page.get('total')} records")
    return items


def render(api: ApiClient) -> None:
    st.title("Credit officer")
    params = st.query_params
    with st.form("search"):
        kind = st.radio("Search by", ["Application", "Client"], horizontal=True)
        value = st.text_input("Application id or client id (SK_ID_CURR)")
        if st.form_submit_button("Search") and value.strip():
            params.clear()
            params["application" if kind == "Application" else "client"] = value.strip()
    if "application" in params:
        _by_application(api, params["application"])
    elif "client" in params:
        _by_client(api, params["client"])


def _by_application(api: ApiClient, application_id: str) -> None:
    try:
        body = api.decision(application_id)
    except ApiCallError as exc:
        st.error(f"Application {application_id}: {exc.detail} ({exc.status or 'no answer'})")
        return
    _show_record(api, body)
    show_features(api, int(body["sk_id_curr"]))
    show_history(api, int(body["sk_id_curr"]))


def _by_client(api: ApiClient, raw: str) -> None:
    if not raw.isdigit() or int(raw) <= 0:
        st.error(f"Client id must be a positive integer, got {raw!r}")
        return
    sk_id_curr = int(raw)
    items = show_history(api, sk_id_curr)
    if items:
        latest = next((i for i in items if i["kind"] == "decision"), items[0])
        st.divider()
        try:
            body = api.decision(latest["application_id"])
        except ApiCallError as exc:
            st.error(str(exc))
            return
        _show_record(api, body)
    show_features(api, sk_id_curr)


def _show_record(api: ApiClient, body: dict[str, Any]) -> None:
    """The decision with its review beside it (a review alone is shown as the record)."""
    decision, review = body.get("decision"), body.get("review")
    if decision is not None:
        show_decision(api, decision, review)
    elif review is not None:
        show_decision(api, review, None)
