"""Rendering for people and scripts: the dry run (text, json, markdown runbook), the DAG (dot,
mermaid), progress, status (plain or live) and the report (markdown)."""
