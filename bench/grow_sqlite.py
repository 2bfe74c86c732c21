"""Grow a demo SQLite database F times, for scale measurements: copies of every member
(new ids and card numbers, no phone/email hashes) with their ledger entries and tier
events, in the same offices, kept columns included (the copies have the same facts).

    python3 bench/grow_sqlite.py loyalty.db loyalty100k.db 10
"""
import sqlite3, sys, time
src, dst, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
import shutil; shutil.copy(src, dst)
db = sqlite3.connect(dst)
db.execute("PRAGMA journal_mode=OFF"); db.execute("PRAGMA synchronous=OFF"); db.execute("PRAGMA cache_size=-400000")
def cols(t): return [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
mcols, ecols, tcols = cols("member"), cols("ledger_entry"), cols("tier_event")
moff = db.execute("select max(id) from member").fetchone()[0]
eoff = db.execute("select max(id) from ledger_entry").fetchone()[0]
t0 = time.time()
for k in range(1, factor):
    m = {c: c for c in mcols}
    m["id"] = f"id + {k * moff}"
    m["card_number"] = f"'C' || char({65 + k % 26}) || char({65 + k // 26}) || substr(card_number, 4)"
    m["phone_hash"] = "NULL"; m["email_hash"] = "NULL"
    db.execute(f"INSERT INTO member ({','.join(mcols)}) SELECT {','.join(m[c] for c in mcols)} FROM member WHERE id <= {moff}")
    e = {c: c for c in ecols}
    e["id"] = f"id + {k * eoff}"; e["member_id"] = f"member_id + {k * moff}"
    e["external_ref"] = f"CASE WHEN external_ref IS NULL THEN NULL ELSE external_ref || '#{k}' END"
    e["bonus_for_id"] = f"CASE WHEN bonus_for_id IS NULL THEN NULL ELSE bonus_for_id + {k * eoff} END"
    e["reverses_id"] = f"CASE WHEN reverses_id IS NULL THEN NULL ELSE reverses_id + {k * eoff} END"
    db.execute(f"INSERT INTO ledger_entry ({','.join(ecols)}) SELECT {','.join(e[c] for c in ecols)} FROM ledger_entry WHERE id <= {eoff}")
    t = {c: c for c in tcols if c != "id"}
    t["member_id"] = f"member_id + {k * moff}"
    db.execute(f"INSERT INTO tier_event ({','.join(t)}) SELECT {','.join(t.values())} FROM tier_event WHERE member_id <= {moff}")
    db.commit()
    print(k, round(time.time() - t0), flush=True)
db.execute("ANALYZE"); db.commit()
print(db.execute("select count(*) from member").fetchone(), db.execute("select count(*) from ledger_entry").fetchone())
