"""What provisioning, sync and the portal share: the contract's names, the account model,
settings, errors and exit codes, secret reading, the Keycloak repository and the one path
to Entra.

Nothing here imports ``provisioning``, ``sync``, ``portal``, ``devenv`` or ``tests``, and
none of the three applications imports another (``tests/unit/test_layers.py``).
"""
