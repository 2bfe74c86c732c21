"""Phone and email encrypted at rest (members.contacts).

The plain columns are renamed in place (phone -> phone_cipher, email -> email_cipher,
phone_key -> phone_hash, email_key -> email_hash: a rename keeps the unique indexes and
the table, which an SQLite column drop would rebuild), and every value already there is
rewritten: sealed with the first data key, the keys replaced by their keyed hashes. The
keys are the ones `loyalty migrate` configured from the settings (api.db.migrate). On
SQLite the rewrite runs with secure_delete on, so the old values' bytes are zeroed in
the file, not left in free space.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from migrations._operations import AlterFieldOnServer

_BATCH = 1000


def _marks(client, count: int, start: int = 1) -> list[str]:
    postgres = client.capabilities.dialect == "postgres"
    return [f"${n}" if postgres else "?" for n in range(start, start + count)]


async def seal_contacts(apps, schema_editor) -> None:
    from members import contacts
    from members.services import email_hash, phone_hash

    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script("PRAGMA secure_delete = ON")
    keys = None
    last = 0
    p1, p2, p3, p4, p5 = _marks(client, 5)
    select = (
        'SELECT "id", "phone_cipher", "email_cipher", "phone_hash", "email_hash" FROM "member" '
        f'WHERE "id" > {p1} AND ("phone_cipher" IS NOT NULL OR "email_cipher" IS NOT NULL) ORDER BY "id" LIMIT {_BATCH}'
    )
    update = (f'UPDATE "member" SET "phone_cipher" = {p1}, "email_cipher" = {p2}, "phone_hash" = {p3}, '
              f'"email_hash" = {p4} WHERE "id" = {p5}')
    while True:
        _, rows = await client.execute_query(select, [last])
        if not rows:
            break
        keys = keys or contacts.current()  # asked for only when there is something to seal
        changed = []
        for row in rows:
            phone, email = row["phone_cipher"], row["email_cipher"]
            # A CLOSED member's keys were cleared: its hashes stay cleared.
            changed.append((
                keys.seal(phone, "phone"), keys.seal(email, "email"),
                phone_hash(phone) if row["phone_hash"] is not None and phone else None,
                email_hash(email) if row["email_hash"] is not None and email else None,
                row["id"],
            ))
        await client.execute_many(update, changed)
        last = rows[-1]["id"]


class Migration(migrations.Migration):
    dependencies = [('models', '0017_partner_webhooks')]

    initial = False

    operations = [
        ops.RenameField(model_name='Member', old_name='phone', new_name='phone_cipher'),
        ops.RenameField(model_name='Member', old_name='email', new_name='email_cipher'),
        ops.RenameField(model_name='Member', old_name='phone_key', new_name='phone_hash'),
        ops.RenameField(model_name='Member', old_name='email_key', new_name='email_hash'),
        # SQLite keeps whatever length a value has: only PostgreSQL's types change.
        AlterFieldOnServer(model_name='Member', name='phone_cipher', field=fields.TextField(null=True, unique=False)),
        AlterFieldOnServer(model_name='Member', name='email_cipher', field=fields.TextField(null=True, unique=False)),
        ops.RunPython(seal_contacts),
        AlterFieldOnServer(
            model_name='Member', name='email_hash', field=fields.CharField(null=True, unique=True, max_length=32)),
    ]
