"""VIP care by the regional offices: care calls, feedback, lifecycle and value
segments, greetings and region statistics. Builds on `members` and `loyalty`."""

# The worklist's state on the member row follows every posting and tier change:
# care.calls registers its recompute with loyalty.changes on import. Tortoise imports
# care.models (so this package) in every process that uses the database.
from care import calls as _calls  # noqa: E402,F401
