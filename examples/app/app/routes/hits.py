from fastapi import APIRouter, Request

router = APIRouter()

HITS_KEY = "onebox:hits"


@router.post("/hits")
async def hit(request: Request) -> dict[str, int]:
    # INCR is atomic in Redis, so the count is right across workers.
    return {"hits": await request.app.state.redis.incr(HITS_KEY)}
