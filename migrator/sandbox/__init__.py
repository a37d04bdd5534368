"""The local test bed: real Elasticsearch nodes and an OSS-compatible server (the embedded default)."""
