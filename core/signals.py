"""What ``core`` tells the apps above it.

``core`` imports no other app, yet account changes and staff edits are audited: the audit
log lives in ``provenance``, which connects its receivers to these signals in
``ProvenanceConfig.ready()``.

Each signal is sent inside the transaction that makes the change, and Django runs
receivers synchronously, so a change and its audit event commit or roll back together (a
receiver that fails fails the change). The account services in ``core.services`` send
``user_created`` and ``user_role_changed``; the user admin (``core.admin``) sends the others
itself, because there Django's own admin forms make the change and no service runs.
"""

from django.dispatch import Signal

# sender: the user model. ``user``: the saved new user; ``actor``: who created it (None
# when no signed-in user did, e.g. a management command).
user_created = Signal()

# sender: the user model. ``user`` (saved with its new role), ``actor``, ``previous``: the
# role before, ``role``: the role now. Sent only when the role really changed.
user_role_changed = Signal()

# sender: the user model. ``user``, saved with its new (or disabled) password; ``actor``.
user_password_changed = Signal()

# sender: the model class. ``obj``: the saved object; ``actor``; ``old`` and ``new``: the
# stored and the saved values, by field name, of the fields that may have changed;
# ``redacted``: personal-data fields to record as changed without their values.
model_changed = Signal()
