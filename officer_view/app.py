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
    pages = [
        st.Page(lambda: officer.render(api), title="Credit officer", url_path="officer", default=True),
        st.Page(
            lambda: monitoring.render(api, urls, view.refresh_s), title="Monitoring", url_path="monitoring"
        ),
    ]
    st.navigation(pages).run()


main()
