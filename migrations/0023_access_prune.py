from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0022_books')]

    initial = False

    operations = [
        # The access audit's retention job (loyalty access prune) finds the rows due by it.
        ops.AddIndex(
            model_name='MemberAccess',
            index=Index(fields=['at']),
        ),
    ]
