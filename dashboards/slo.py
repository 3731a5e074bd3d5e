"""Service-level targets and thresholds shared by the dashboards and the alert rules.

One place, so a panel's red line and the alert that pages on it can never disagree.
"""

from __future__ import annotations

from scoring.drift import PSI_ALERT, PSI_WARN

# Prometheus scrape jobs (prometheus.yml, docker-compose) — the worker-down panel and alert use them.
WORKER_JOB = "credit-scorer-worker"
API_JOB = "credit-scorer-api"

# Grafana datasource provisioned by dashboards/provisioning/datasources/prometheus.yml.
DATASOURCE_TYPE = "prometheus"
DATASOURCE_UID = "credit-scorer-prometheus"

# Event → decision latency SLO (stage="total"): p99 under 15 ms.
LATENCY_SLO_SECONDS = 0.015
# Expected share of ACCORD decisions; outside this band the model or its inputs are suspect.
APPROVAL_RATE_MIN = 0.30
APPROVAL_RATE_MAX = 0.95
# Share of incoming events sent to the dead-letter topic.
DEAD_LETTER_RATIO_MAX = 0.01
# Total records behind on the applications topic before a growing lag is worth a page.
CONSUMER_LAG_MIN_RECORDS = 1000

# Records pending on a worker's partitions and none decided or dead-lettered this long: it is stalled.
STALL_SECONDS = 30

# Drift bands (population stability index), from the pure drift core.
DRIFT_PSI_WARN = PSI_WARN
DRIFT_PSI_ALERT = PSI_ALERT

# Disparate impact (lowest / highest approval rate of a segment's groups): the four-fifths rule.
DISPARATE_IMPACT_MIN = 0.8

# Decision labels (schemas.Decision.decision).
APPROVED = "ACCORD"
REFUSED = "REFUS"
DECISIONS = ("ACCORD", "REFUS", "REFER")

# The role label of decisions and scores: the champion's are published, the challenger's are the shadow.
CHAMPION = "champion"
CHALLENGER = "challenger"
