"""Sign-in with SAML 2.0: Legato as a service provider (pysaml2, signatures by xmlsec1).

``SamlClient.begin`` gives the identity provider's URL for the browser (an AuthnRequest by
the HTTP-Redirect binding) and the request's id, which the web layer keeps server side; the
provider posts a Response to the assertion consumer service (``/auth/saml/acs``) and
``SamlClient.finish`` turns it into an ``Identity``: the signature (of the response or of the
assertion) by a certificate in the provider's metadata, the audience, the time conditions and
InResponseTo the kept request id are all checked by pysaml2. Every failure is a
``SignInRefused``.

The web layer forgets a request id once ``finish`` has been called with it, so a response is
accepted once per request: a replayed response finds no request to answer.

pysaml2 reads the system clock itself for the time conditions (``NotBefore``,
``NotOnOrAfter``), allowing ``accepted_time_diff`` seconds of skew; it cannot take a clock.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import AuthnResponse

from legato.security.sso import (
    ACS_PATH,
    DEFAULT_LABELS,
    METADATA_PATH,
    Identity,
    SignInRefused,
    SsoConfigError,
    TomlTable,
    choose_role,
    join_url,
)

__all__ = ["ACS_PATH", "METADATA_PATH", "SamlClient", "SamlSettings"]

_SECTION = "auth.saml"
_KEYS = (
    "idp_metadata",
    "idp_entity_id",
    "sp_entity_id",
    "acs_url",
    "sp_key",
    "sp_cert",
    "group_attribute",
    "username_attribute",
    "role_map",
    "default_role",
    "label",
)


@dataclass(frozen=True)
class SamlSettings:
    """How Legato signs people in with one SAML 2.0 identity provider (``[auth.saml]``).

    ``idp_metadata`` is a file path or an ``https://`` URL of the provider's metadata.
    ``sp_key``/``sp_cert`` (PEM files, both or neither) let Legato sign its requests and read
    encrypted assertions; without them requests go unsigned and the provider must not
    encrypt assertions.
    """

    idp_metadata: str
    sp_entity_id: str
    acs_url: str
    idp_entity_id: str | None = None
    sp_key: Path | None = None
    sp_cert: Path | None = None
    group_attribute: str = "groups"
    username_attribute: str = "uid"
    role_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_role: str | None = None
    label: str = DEFAULT_LABELS["saml"]

    @classmethod
    def from_toml(cls, table: Mapping[str, Any], *, base_url: str) -> SamlSettings:
        """Settings from the ``[auth.saml]`` table; ``base_url`` is Legato's public address.

        ``acs_url`` defaults to ``base_url`` + ``/auth/saml/acs`` and ``sp_entity_id`` to the
        SP metadata URL, ``base_url`` + ``/auth/saml/metadata``. Raises ``SsoConfigError``
        naming the key at fault.
        """
        t = TomlTable(table, _SECTION, _KEYS)
        metadata = t.text("idp_metadata")
        if "://" in metadata:
            if urlsplit(metadata).scheme != "https":
                raise t.error("idp_metadata must be a file or an https:// URL")
        elif not Path(metadata).is_file():
            raise t.error(f"idp_metadata: no file {metadata}")
        key, cert = (_pem_path(t, k) for k in ("sp_key", "sp_cert"))
        if (key is None) != (cert is None):
            raise t.error("sp_key and sp_cert go together: give both or neither")
        role_map, default_role = t.role_map()
        return cls(
            idp_metadata=metadata,
            idp_entity_id=t.optional_text("idp_entity_id"),
            sp_entity_id=t.text("sp_entity_id", join_url(base_url, METADATA_PATH)),
            acs_url=t.text("acs_url", join_url(base_url, ACS_PATH)),
            sp_key=key,
            sp_cert=cert,
            group_attribute=t.text("group_attribute", "groups"),
            username_attribute=t.text("username_attribute", "uid"),
            role_map=role_map,
            default_role=default_role,
            label=t.text("label", cls.label),
        )


def _pem_path(t: TomlTable, key: str) -> Path | None:
    name = t.optional_text(key)
    if name is None:
        return None
    path = Path(name).expanduser()
    if not path.is_file():
        raise t.error(f"{key}: no file {path}")
    return path


class SamlClient:
    """The service provider for one identity provider. Thread-safe.

    Needs the ``xmlsec1`` program (Debian package ``xmlsec1``) to check signatures.
    ``accepted_time_diff`` is the clock skew tolerated in the time conditions, seconds.
    """

    def __init__(self, settings: SamlSettings, *, accepted_time_diff: int = 60) -> None:
        self.settings = settings
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise SsoConfigError(
                "SAML sign-in needs the xmlsec1 program (Debian/Ubuntu: apt-get install xmlsec1)"
            )
        s = settings
        if "://" in s.idp_metadata:
            metadata: dict[str, Any] = {"remote": [{"url": s.idp_metadata}]}
        else:
            metadata = {"local": [s.idp_metadata]}
        config: dict[str, Any] = {
            "entityid": s.sp_entity_id,
            "xmlsec_binary": xmlsec,
            "metadata": metadata,
            "accepted_time_diff": accepted_time_diff,
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(s.acs_url, BINDING_HTTP_POST)]},
                    # The assertion must be signed, by itself or inside a signed response.
                    "want_assertions_or_response_signed": True,
                    "want_assertions_signed": False,
                    "want_response_signed": False,
                    "allow_unsolicited": False,
                    "authn_requests_signed": s.sp_key is not None,
                },
            },
        }
        if s.sp_key is not None and s.sp_cert is not None:
            config["key_file"] = str(s.sp_key)
            config["cert_file"] = str(s.sp_cert)
            config["encryption_keypairs"] = [
                {"key_file": str(s.sp_key), "cert_file": str(s.sp_cert)}
            ]
        self._config = SPConfig()
        try:
            self._config.load(config)
        except Exception as exc:  # pysaml2 raises a dozen kinds for bad metadata
            raise SsoConfigError(
                f"[{_SECTION}] idp_metadata {s.idp_metadata} cannot be loaded: {type(exc).__name__}"
            ) from None
        self._client = Saml2Client(config=self._config)
        self._idp = self._pick_idp()
        self._lock = threading.Lock()

    def _pick_idp(self) -> str:
        idps = sorted(self._client.metadata.identity_providers())
        wanted = self.settings.idp_entity_id
        if wanted is not None:
            if wanted not in idps:
                raise SsoConfigError(f"[{_SECTION}] idp_entity_id {wanted} is not in idp_metadata")
            return wanted
        if len(idps) != 1:
            raise SsoConfigError(
                f"[{_SECTION}] idp_metadata describes {len(idps)} identity providers; "
                "name one with idp_entity_id"
            )
        return idps[0]

    def metadata(self) -> str:
        """This service provider's metadata (XML), for the identity provider's administrator."""
        return create_metadata_string(None, config=self._config).decode()

    def begin(self, relay_state: str = "") -> tuple[str, str]:
        """Start a sign-in: the provider's URL for the browser, and the request id to keep."""
        with self._lock:
            request_id, info = self._client.prepare_for_authenticate(
                entityid=self._idp, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
            )
        location = dict(info["headers"])["Location"]
        return location, str(request_id)

    def finish(self, saml_response_b64: str, expected_request_id: str) -> Identity:
        """The identity in the provider's Response (the base64 ``SAMLResponse`` form field)
        to the request ``expected_request_id``. Raises ``SignInRefused`` on any failure."""
        if not saml_response_b64:
            raise SignInRefused("the SAML response is empty")
        with self._lock:
            try:
                response = self._client.parse_authn_request_response(
                    saml_response_b64,
                    BINDING_HTTP_POST,
                    outstanding={expected_request_id: self.settings.acs_url},
                )
            except Exception as exc:  # pysaml2 raises many unrelated kinds; all refuse
                raise SignInRefused(f"the SAML response is not accepted ({_reason(exc)})") from None
            if not isinstance(response, AuthnResponse) or response.assertion is None:
                raise SignInRefused("the SAML response carries no usable assertion")
            # Saml2Client caches what it learns of each person; Legato keeps nothing here.
            if response.name_id is not None:
                self._client.users.remove_person(response.name_id)
        return self._identity(response)

    def _identity(self, response: AuthnResponse) -> Identity:
        s = self.settings
        attributes: Mapping[str, list[Any]] = response.get_identity() or {}
        name_id = response.name_id.text if response.name_id is not None else None

        def first(*names: str) -> str | None:
            for name in names:
                values = attributes.get(name) or []
                if values and isinstance(values[0], str) and values[0]:
                    return values[0]
            return None

        email = first("mail", "email", "emailAddress")
        username = first(s.username_attribute) or email or name_id
        if not username:
            raise SignInRefused("the SAML assertion names nobody")
        groups = tuple(str(g) for g in attributes.get(s.group_attribute) or [])
        role = choose_role(groups, s.role_map, s.default_role)
        if role is None:
            raise SignInRefused(f"no group of {username!r} maps to a Legato role")
        return Identity(
            subject=name_id or username,
            username=username,
            email=email,
            groups=groups,
            role=role,
            provider="saml",
        )


def _reason(exc: Exception) -> str:
    # The class name says what failed (SignatureError, ...); the messages of some carry the
    # document itself, which must not reach a log line. pysaml2 raises a bare Exception for
    # a document it cannot parse and for an audience that is not this service provider.
    name = type(exc).__name__
    return "malformed, or for another audience" if name == "Exception" else name
