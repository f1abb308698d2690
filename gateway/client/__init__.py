"""The client side: the only code that holds plaintext and private keys.

:mod:`.cli` holds the client verbs of the ``carebridge`` command; the
offline age verbs (``encrypt``, ``decrypt``, ``keygen``) live in
:mod:`.offline`.
"""
