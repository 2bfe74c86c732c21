from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0023_access_prune')]

    initial = False

    # A member's window totals (qualifying miles and segments by activity date) summed
    # from the index alone: at 1,000,000 members the table pages of a member's entries
    # are rarely cached, and the tier review read one per entry (bench/RESULTS.md, Scale).
    # The new index is built before the old one goes, so no statement runs without one.
    operations = [
        ops.AddIndex(
            model_name='LedgerEntry',
            index=Index(fields=['member_id', 'activity_date', 'qualifying_miles', 'qualifying_segments']),
        ),
        ops.RemoveIndex(
            model_name='LedgerEntry',
            name=None,
            fields=['member_id', 'activity_date'],
        ),
    ]
