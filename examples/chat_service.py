"""Chat service: publishes its routes through nginx_discovery's /health.

    /usr/bin/python3 examples/chat_service.py --port 8001
"""

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import Body, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    from nginx_discovery import create_service_health_endpoint

SERVICE = "chat"
app = FastAPI(title="chat")
bearer = HTTPBearer()


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException):
    return JSONResponse({"service": SERVICE, "detail": exc.detail},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    return JSONResponse({"service": SERVICE, "detail": exc.errors()}, status_code=422)


@app.post("/chat/intelligent", tags=["chat"])
def intelligent_chat(body: dict = Body(...),
                     creds: HTTPAuthorizationCredentials = Depends(bearer)):
    """Answer a chat message (bearer token required)."""
    return {"service": SERVICE, "served_by": SERVICE, "authenticated": True, "echo": body}


@app.get("/chat/history/{user_id:int}", tags=["chat"])
def chat_history(user_id: int):
    """Recent messages of one user."""
    return {"service": SERVICE, "user_id": user_id,
            "messages": [f"hello from user {user_id}"]}


@app.get("/chat/rooms/{room}", tags=["rooms"])
def chat_room(room: str):
    """Describe a chat room."""
    return {"service": SERVICE, "room": room, "members": 3}


@app.websocket("/chat/ws")
async def chat_socket(websocket: WebSocket):
    """Echo text messages, prefixed with "chat: "."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text("chat: " + await websocket.receive_text())
    except WebSocketDisconnect:
        pass


create_service_health_endpoint(app, SERVICE, "1.0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")
