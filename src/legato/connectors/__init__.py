"""Connectors: functions tasks call to move data through resources — SQL extract (full or
incremental) and load (append, replace, upsert), paginated HTTP extract, files on any fsspec
URL, and activation (HTTP pushes, RabbitMQ, MQTT, Redis streams)."""
