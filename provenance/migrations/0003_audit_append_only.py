"""Make the audit table append-only at the database level (PostgreSQL).

The hash chain detects tampering; this trigger prevents it for the application's own
database role: UPDATE and DELETE on ``provenance_auditevent`` raise an error. TRUNCATE is
left to privileges (see the README's deployment notes), because Django's test-database
flush truncates every table. Other databases (SQLite for development) keep the chain
check only.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION provenance_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'provenance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER provenance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON provenance_auditevent
    FOR EACH ROW EXECUTE FUNCTION provenance_audit_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS provenance_auditevent_no_update_delete ON provenance_auditevent;
DROP FUNCTION IF EXISTS provenance_audit_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0002_license_catalogue_tombstone_consent_evidence"),
    ]

    operations = [migrations.RunPython(forward, backward)]
