"""The use cases: every decision the gateway makes, with no aiohttp in them.

Each takes the :class:`~.services.Services` and a frozen per-request
:class:`~.caller.Caller`, and returns a result or raises one
:class:`~.refusal.Refusal`:

- documents: :func:`~.documents.access_document` (read, download),
  :func:`~.documents.amend_document`, :func:`~.documents.list_documents`;
- uploads: :func:`~.upload.admit`, :func:`~.upload.check_ciphertexts`, :func:`~.upload.record`;
- links: :func:`~.links.issue_link`, :func:`~.links.open_link`, :func:`~.links.claim_link`,
  :func:`~.links.revoke_link`;
- keys: :func:`~.keys.register_keys`, :func:`~.keys.revoke_keys`, :func:`~.keys.lookup`, …;
- the log: :func:`~.audit.require_auditor`;
- people in a browser: :mod:`.enrollment` (one-time links: password and second factor) and
  :mod:`.signin` (sessions).

An allowed decision's log entry is written in the same unit as its effect;
a refusal rolls its unit back and reaches the log through the one refusal
middleware (:mod:`carebridge.gateway.server.refusals`). The database is
reached only through the store's typed repositories.
"""
