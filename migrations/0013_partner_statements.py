from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_member_sign_in')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='LedgerEntry',
            name=None,
            fields=['source', 'posted_at'],
        ),
        ops.AddIndex(
            model_name='LedgerEntry',
            index=Index(fields=['source', 'posted_at', 'id']),
        ),
    ]
