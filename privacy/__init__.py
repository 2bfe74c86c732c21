"""A member's personal data, whole: export (privacy.export) and erasure (privacy.erasure).

The one domain package that reads every area's tables about a member: it imports
members, loyalty and care, and none of them imports it (api -> schema -> privacy ->
care, loyalty, members)."""
