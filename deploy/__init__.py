"""Deployment assets: Grafana dashboards, Prometheus rules, Alertmanager."""
