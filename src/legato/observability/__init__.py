"""What Legato tells the outside world about itself: Prometheus metrics (``metrics``),
OpenTelemetry traces (``tracing``), structured daemon logs (``logs``), alert rules
(``alert_rules``) and the channels alerts are sent through (``channels``).

Vocabulary shared by every layer, below the definitions: it never reads the store. Deciding
when an alert is raised, its outbox and its delivery live in the services
(``legato.services.alerting``), over the store's alert tables.
"""
