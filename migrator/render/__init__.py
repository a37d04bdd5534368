"""Rendering for people and scripts: the dry run (text, json), the DAG (dot, mermaid), progress."""
