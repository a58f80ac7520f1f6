"""A buyer group's pages: its needs, publishing and changing them, shortlists and dialogues."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
