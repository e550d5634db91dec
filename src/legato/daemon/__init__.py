"""The long-running process (``legato up``, ``legato scheduler``): its loop, timers, trigger
listeners, heartbeats, the web server and signals. Everything it does to runs goes through
the services; starting and adopting runs through ``legato.services.driving``.
"""
