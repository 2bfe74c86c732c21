from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_care_counts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Member',
            name='lifecycle_since',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_recorded_on',
            field=fields.DateField(null=True),
        ),
        # Two worklist reasons joined the order (DECLINING, DORMANT before NEVER_CALLED), so
    # the stored priorities of VIPs are recomputed: their recheck day is set in the past,
    # which the daily job (`loyalty care refresh`) and the worklist's read-time merge
    # both take as "state no longer holds". A stage already DECLINING or DORMANT is taken
    # to have begun at the last refresh.
    ops.RunSQL(
            [
                "UPDATE member SET care_recheck_on = '2000-01-01' WHERE tier >= 1",
                "UPDATE member SET lifecycle_since = care_refreshed_on WHERE lifecycle_stage IN ('DECLINING', 'DORMANT')",
            ],
            reverse_sql=[],
        ),
    ]
