"""The ``mqtt`` kind: a connected paho-mqtt client (MQTT 5) running its network loop.

    [resources.plant]
    kind = "mqtt"
    host = "127.0.0.1"
    port = 1883                    # 8883 is the default with tls
    client_id = "etl"              # a prefix: each worker process adds its own suffix
    username = "etl"
    password = "${secret:mqtt}"
    tls = true                     # or {ca_certs = "...", certfile = "...", keyfile = "..."}

paho's client may be used from any thread; it reconnects by itself when the connection drops.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any, ClassVar

from legato.resources.kind import ResourceError, ResourceKind

#: The keys a ``tls`` table may hold (paho's ``tls_set`` arguments).
TLS_KEYS = frozenset({"ca_certs", "certfile", "keyfile"})


class MqttResource(ResourceKind):
    """An MQTT broker; tasks get a connected ``paho.mqtt.client.Client``."""

    kind: ClassVar[str] = "mqtt"
    settings_keys: ClassVar[frozenset[str]] = frozenset(
        {"host", "port", "client_id", "username", "password", "tls", "keepalive"}
        | {"connect_timeout"}
    )

    def validate(self) -> None:
        self.option("host", str, "127.0.0.1")
        port = self.option("port", int, 1883)
        if not 0 < port < 65536:
            raise ResourceError(f"resource {self.name!r} (mqtt): port must be 1-65535, got {port}")
        self.option("client_id", str, "legato")
        self.option("username", str, None)
        self.option("password", str, None)
        tls = self.option("tls", (bool, dict), False)
        if isinstance(tls, dict):
            unknown = sorted(set(tls) - TLS_KEYS)
            if unknown:
                raise ResourceError(
                    f"resource {self.name!r} (mqtt): unknown tls setting {unknown[0]!r} "
                    f"(known: {', '.join(sorted(TLS_KEYS))})"
                )
        self.option("keepalive", int, 60)
        self.option("connect_timeout", (int, float), 10.0)

    @property
    def address(self) -> str:
        """``mqtt://host:port`` (``mqtts://`` with TLS), for messages."""
        tls = bool(self.settings.get("tls"))
        scheme = "mqtts" if tls else "mqtt"
        port = self.settings.get("port", 8883 if tls else 1883)
        return f"{scheme}://{self.settings.get('host', '127.0.0.1')}:{port}"

    def open(self) -> Any:
        import paho.mqtt.client as mqtt

        prefix = self.option("client_id", str, "legato")
        # One session per process: two clients with one id would throw each other off.
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}",
            protocol=mqtt.MQTTv5,
        )
        if self.settings.get("username") is not None:
            client.username_pw_set(self.settings["username"], self.settings.get("password"))
        tls = self.settings.get("tls", False)
        if tls:
            client.tls_set(**(tls if isinstance(tls, dict) else {}))
        keepalive = self.option("keepalive", int, 60)
        timeout = self.option("connect_timeout", (int, float), 10.0)
        connect_mqtt(client, self.address, keepalive, timeout, what=f"resource {self.name!r}")
        return client

    def check(self, client: Any) -> str:
        if not client.is_connected():
            raise ResourceError(f"resource {self.name!r} (mqtt): not connected to {self.address}")
        return f"connected to {self.address}"

    def close(self, client: Any) -> None:
        client.disconnect()
        client.loop_stop()


def connect_mqtt(
    client: Any,
    address: str,
    keepalive: int,
    timeout: float,
    *,
    what: str,
    clean_start: bool | None = None,
    properties: Any = None,
) -> None:
    """Connect ``client`` to ``address`` (``mqtt[s]://host:port``), start its network loop and
    wait for the broker's answer; raise ResourceError naming ``what`` when it refuses or is
    silent for ``timeout`` seconds."""
    import paho.mqtt.client as mqtt

    answered = threading.Event()
    refusal: list[str] = []
    earlier = client.on_connect

    def on_connect(cl: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refusal.append(str(reason))
        answered.set()
        if earlier is not None:
            earlier(cl, userdata, flags, reason, props)

    client.on_connect = on_connect
    host, _, port = address.split("://", 1)[1].rpartition(":")
    start = mqtt.MQTT_CLEAN_START_FIRST_ONLY if clean_start is None else clean_start
    try:
        client.connect(host, int(port), keepalive, clean_start=start, properties=properties)
    except OSError as exc:
        raise ResourceError(f"{what}: cannot connect to MQTT at {address}: {exc}") from exc
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise ResourceError(f"{what}: MQTT at {address} did not answer within {timeout:g} s")
        if refusal:
            raise ResourceError(f"{what}: MQTT at {address} refused the connection: {refusal[0]}")
    except ResourceError:
        client.loop_stop()
        client.disconnect()
        raise
    finally:
        client.on_connect = earlier
