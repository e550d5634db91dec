"""Resources: named, configured connections (SQL, HTTP, files, DuckDB, Redis, RabbitMQ, MQTT)
declared in legato.toml's ``[resources.NAME]`` and handed to the tasks that ask for them.

A ``ResourceKind`` says how to open, check and close one kind; ``kind_class`` finds a kind by
its name (built in, from an entry point of the ``legato.resources`` group, or
``"package.module:Class"``). Kinds import their client libraries only when opened.
``settings`` resolves ``${secret:...}`` and ``${env:...}`` in a resource's settings and shows
them masked; ``opened`` keeps the clients a process opened, one per resource, until it ends,
and is what a task sees as ``ctx.resources`` (docs/resources.md).
"""
