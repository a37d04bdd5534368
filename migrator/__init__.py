"""migrator: move Elasticsearch data between clusters or regions through snapshot and restore.

The flow: plan spec -> planner -> DAG -> executor -> steps -> clients -> state.
"""

__version__ = "0.1.0"
