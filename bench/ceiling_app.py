"""The ceiling: a bare FastAPI app answering a constant, served like the real one."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def constant() -> dict[str, str]:
    return {"status": "ok"}
