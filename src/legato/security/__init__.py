"""Security primitives: password hashing, tokens and roles, the key ring that seals secrets
at rest, the audit trail's hash chain, owner-only files (``files.py``), TLS certificates
(``tls.py``), and single sign-on (an OpenID Connect relying party, a SAML 2.0 service
provider) turning an identity provider's answer into an identity with a role.

Below the services: the services decide who may do what and write the audit trail; this
package only hashes, seals, opens and checks what identity providers say, and never touches
the store.
"""
