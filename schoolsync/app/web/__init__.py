"""The web role: webhook ingest, health, metrics, and (later) the admin API and page."""
