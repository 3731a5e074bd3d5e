"""The credit officer's view and the monitoring page: Streamlit pages, thin clients of the REST API."""
