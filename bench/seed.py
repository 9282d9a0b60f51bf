"""Fill a generated project's database for the service benchmark.

Run inside the generated project with its environment (DATABASE_URL, SECRET_KEY):
    python seed.py USERS BOOKINGS_PER_USER
Prints a bearer token for the first user.
"""

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from app.core.security import create_access_token, hash_password
from app.db.session import SessionLocal, engine
from app.modules.auth.models import User
from app.modules.bookings.models import Booking
from sqlalchemy import delete, insert, select

CHUNK = 5000


async def main(users: int, per_user: int) -> str:
    hashed = hash_password("bench-password")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with SessionLocal() as session:
        await session.execute(delete(Booking))
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
        ids = list(await session.scalars(select(User.id)))
        batch: list[dict[str, object]] = []
        for position, user_id in enumerate(sorted(ids)):
            for slot in range(per_user):
                begins = start + timedelta(hours=slot)
                batch.append(
                    {
                        "user_id": user_id,
                        "therapist_id": position * 1000 + slot % 1000 + 1,
                        "start_time": begins,
                        "end_time": begins + timedelta(minutes=60),
                        "duration_minutes": 60,
                        "status": "confirmed",
                        "created_at": start,
                    }
                )
                if len(batch) >= CHUNK:
                    await session.execute(insert(Booking), batch)
                    batch.clear()
        if batch:
            await session.execute(insert(Booking), batch)
        await session.commit()
    await engine.dispose()
    return create_access_token(str(min(ids)))


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]))))
