"""The carebridge gateway: the server (``server/``), the client (``client/``)
and the ``carebridge`` command that fronts both (:mod:`.cli`).

The two halves meet only over HTTP: the server never imports the client (the
only place that holds plaintext and private keys), nor the client the server.
"""
