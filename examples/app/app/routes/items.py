from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Item

router = APIRouter(prefix="/items", tags=["items"])
Session = Annotated[AsyncSession, Depends(get_session)]


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime


@router.post("", status_code=201, response_model=ItemOut)
async def create_item(payload: ItemIn, session: Session) -> Item:
    item = Item(name=payload.name)
    session.add(item)
    await session.commit()
    await session.refresh(item)  # load server-side defaults (created_at)
    return item


@router.get("", response_model=list[ItemOut])
async def list_items(
    session: Session,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Item]:
    result = await session.scalars(
        select(Item).order_by(Item.id).limit(limit).offset(offset)
    )
    return list(result)


@router.get("/{item_id}", response_model=ItemOut)
async def get_item(item_id: int, session: Session) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="item not found")
    return item
