"""Private databases on the machine's shared PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def pg_database(setup: str, prefix: str = "dtk_test") -> AsyncIterator[str]:
    """A fresh PostgreSQL database on the machine's server, `setup` run in it (UTC session);
    yields its name and drops it afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
        try:
            await conn.execute("SET TIME ZONE 'UTC'; " + setup)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
