"""Security primitives: password hashing, the key ring that seals secrets at rest, owner-only
files (``files.py``) and TLS certificates (``tls.py``).

Below the services: the services decide who may do what and write the audit trail; this
package only hashes, seals and opens, and never touches the store.
"""
