"""Long-running readers that feed the ingestion service (`manage.py consume_readings --source ...`)."""
