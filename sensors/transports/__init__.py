"""Transports: the long-running readers (Redis stream, Redis pub/sub, MQTT) and the runner they share, feeding the
ingestion service (`manage.py consume_readings --source ...`)."""
