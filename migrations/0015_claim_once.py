from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0014_miles_claims')]

    initial = False

    operations = [
        # At most one open (PENDING) or APPROVED claim per member and flight: the check in
        # loyalty.claims.submit_claim cannot see a claim being made at the same moment.
        ops.RunSQL(
            "CREATE UNIQUE INDEX miles_claim_open_flight ON miles_claim (member_id, carrier, flight_number, flight_date) "
            "WHERE status IN ('PENDING', 'APPROVED')",
            reverse_sql="DROP INDEX miles_claim_open_flight",
        ),
    ]
