"""Fill a generated project's database for the service benchmark.

Run inside the generated project with its environment (DATABASE_URL, SECRET_KEY):
    python seed.py USERS BOOKINGS_PER_USER THERAPISTS
Each user owns THERAPISTS therapists (inserted in order, so each user's ids are
consecutive) and BOOKINGS_PER_USER bookings, an hour apart, spread over them.
Prints a bearer token for the first user.
"""

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from app.core.security import create_access_token, hash_password
from app.db.session import SessionLocal, engine
from app.modules.auth.models import User
from app.modules.bookings.models import Booking
from app.modules.therapists.models import Therapist
from sqlalchemy import delete, insert, select

CHUNK = 5000


async def main(users: int, per_user: int, per_user_therapists: int) -> str:
    hashed = hash_password("bench-password")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with SessionLocal() as session:
        await session.execute(delete(Booking))
        await session.execute(delete(Therapist))
        await session.execute(delete(User))
        await session.commit()
        rows = [
            {
                "email": f"user{index}@bench.example",
                "hashed_password": hashed,
                "is_active": True,
                "is_superuser": False,
                "created_at": start,
            }
            for index in range(users)
        ]
        await session.execute(insert(User), rows)
        await session.commit()
        ids = sorted(await session.scalars(select(User.id)))
        therapists = [
            {
                "owner_id": user_id,
                "name": f"therapist {n}",
                "created_at": start,
                "updated_at": start,
            }
            for user_id in ids
            for n in range(per_user_therapists)
        ]
        await session.execute(insert(Therapist), therapists)
        await session.commit()
        owned: dict[int, list[int]] = {}
        for therapist_id, owner_id in await session.execute(
            select(Therapist.id, Therapist.owner_id).order_by(Therapist.id)
        ):
            owned.setdefault(owner_id, []).append(therapist_id)
        batch: list[dict[str, object]] = []
        for user_id in ids:
            for slot in range(per_user):
                begins = start + timedelta(hours=slot)
                batch.append(
                    {
                        "owner_id": user_id,
                        "therapist_id": owned[user_id][slot % per_user_therapists],
                        "starts_at": begins,
                        "ends_at": begins + timedelta(minutes=60),
                        # Made one after another, as rows are: a sort by
                        # created_at meets no run of ties.
                        "created_at": start + timedelta(seconds=slot),
                        "updated_at": start + timedelta(seconds=slot),
                    }
                )
                if len(batch) >= CHUNK:
                    await session.execute(insert(Booking), batch)
                    batch.clear()
        if batch:
            await session.execute(insert(Booking), batch)
        await session.commit()
    await engine.dispose()
    return create_access_token(str(ids[0]))


if __name__ == "__main__":
    print(asyncio.run(main(*(int(arg) for arg in sys.argv[1:4]))))
