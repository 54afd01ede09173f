"""Bounded path parameters: an id outside its column's range is a 422, never a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are INTEGER columns (32-bit on PostgreSQL); SQLite overflows past 64 bits.
MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a positive id")]
