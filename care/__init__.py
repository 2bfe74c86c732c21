"""VIP care by the regional offices: care calls, feedback, lifecycle and value
segments, greetings and region statistics. Builds on `members` and `loyalty`."""
