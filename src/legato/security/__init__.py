"""Security primitives: password hashing and the key ring that seals secrets at rest.

Below the services: the services decide who may do what and write the audit trail; this
package only hashes, seals and opens, and never touches the store.
"""
