"""Thin clients: one HTTP layer for Elasticsearch, one storage layer over oss2 or a local directory."""
