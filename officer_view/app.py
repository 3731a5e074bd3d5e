"""Streamlit entry point (``credit-scorer view serve``): the officer page and the monitoring page.

A thin client of the REST API: settings read once here (``settings.view``) and passed down.
"""

from __future__ import annotations

import streamlit as st

from credit_scorer.settings import Settings
from officer_view import monitoring, officer
from officer_view.api_client import ApiClient


def main() -> None:
    view = Settings().view
    api = ApiClient(view.api_url, view.timeout_s)
    urls = [u.strip() for u in view.metrics_urls.split(",") if u.strip()]
    st.set_page_config(page_title="Credit scorer", layout="wide")

    def officer_page() -> None:
        officer.render(api)

    def monitoring_page() -> None:
        monitoring.render(api, urls, view.refresh_s)

    pages = [
        st.Page(officer_page, title="Credit officer", default=True),  # served at /
        st.Page(monitoring_page, title="Monitoring", url_path="monitoring"),
    ]
    st.navigation(pages).run()


main()
