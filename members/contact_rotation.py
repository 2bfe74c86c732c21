"""Key rotation of the sealed phones and emails (`loyalty members reencrypt`).

Every member's phone and email still sealed with an older data key is sealed again with
the first key of LOYALTY_DATA_KEYS, and every phone and email hash is computed again
with the current LOYALTY_LOOKUP_KEY (after that key changed, lookups find a member only
once its hashes are recomputed). Batches of members by id, each batch in one
transaction; a row changed by someone else meanwhile is left as they wrote it (their
write used the current keys already).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from members import contacts
from members.models import Member
from members.services import email_hash, phone_hash

_WITH_CONTACTS = Q(phone_cipher__not_isnull=True) | Q(email_cipher__not_isnull=True)


@dataclass(frozen=True)
class Resealed:
    """What a run did: members with a phone or email read, and those rewritten."""

    members: int
    rewritten: int


async def reseal_contacts(*, batch: int = 1000, progress: Callable[[int, int], None] | None = None) -> Resealed:
    """Seal every phone and email with the first data key and hash them with the lookup
    key; `progress(done, total)` after each batch."""
    keys = contacts.current()
    total = await Member.filter(_WITH_CONTACTS).count()
    done = rewritten = last = 0
    while True:
        rows = await (Member.filter(_WITH_CONTACTS, id__gt=last).order_by("id").limit(batch)
                      .values_list("id", "phone_cipher", "email_cipher", "phone_hash", "email_hash"))
        if not rows:
            break
        async with in_transaction() as connection:
            for member_id, sealed_phone, sealed_email, old_phone_hash, old_email_hash in rows:
                phone, email = keys.open(sealed_phone, "phone"), keys.open(sealed_email, "email")
                values = {
                    "phone_cipher": sealed_phone if keys.is_current(sealed_phone) else keys.seal(phone, "phone"),
                    "email_cipher": sealed_email if keys.is_current(sealed_email) else keys.seal(email, "email"),
                    # A CLOSED member's hashes are cleared (members.services.set_status): kept so.
                    "phone_hash": phone_hash(phone) if old_phone_hash is not None and phone else None,
                    "email_hash": email_hash(email) if old_email_hash is not None and email else None,
                }
                if values == {"phone_cipher": sealed_phone, "email_cipher": sealed_email,
                              "phone_hash": old_phone_hash, "email_hash": old_email_hash}:
                    continue
                # Only if the row still holds what was read: a concurrent update wins.
                rewritten += await (Member.filter(id=member_id, phone_cipher=sealed_phone, email_cipher=sealed_email)
                                    .using_db(connection).update(**values))
        done += len(rows)
        last = rows[-1][0]
        if progress:
            progress(done, max(done, total))
    return Resealed(done, rewritten)
