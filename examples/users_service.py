"""Users service: publishes its routes through nginx_discovery's /health.

    /usr/bin/python3 examples/users_service.py --port 8002
"""

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    from nginx_discovery import create_service_health_endpoint

SERVICE = "users"
app = FastAPI(title="users")
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
USERS = {1: {"id": 1, "name": "alice"}, 2: {"id": 2, "name": "bob"}}


class NewUser(BaseModel):
    name: str


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException):
    return JSONResponse({"service": SERVICE, "detail": exc.detail},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    return JSONResponse({"service": SERVICE, "detail": exc.errors()}, status_code=422)


def get_current_user(token: str = Depends(oauth2_scheme)):
    """Any bearer token is accepted; the token is the user name."""
    return {"name": token}


@app.get("/users", tags=["users"])
def list_users():
    """List all users."""
    return {"service": SERVICE, "users": list(USERS.values())}


# declared before /users/{user_id}, which would otherwise take "me"
@app.get("/users/me", tags=["users"])
def read_me(user: dict = Depends(get_current_user)):
    """The authenticated user."""
    return {"service": SERVICE, "user": user}


@app.get("/users/{user_id}", tags=["users"])
def get_user(user_id: int):
    """Fetch one user."""
    if user_id not in USERS:
        raise HTTPException(404, f"user {user_id} not found")
    return {"service": SERVICE, "user": USERS[user_id]}


@app.post("/users", tags=["users"], status_code=201)
def create_user(new: NewUser):
    """Create a user."""
    user = {"id": max(USERS, default=0) + 1, "name": new.name}
    USERS[user["id"]] = user
    return {"service": SERVICE, "user": user}


@app.delete("/users/{user_id}", tags=["users"])
def delete_user(user_id: int):
    """Delete a user."""
    if USERS.pop(user_id, None) is None:
        raise HTTPException(404, f"user {user_id} not found")
    return {"service": SERVICE, "deleted": user_id}


create_service_health_endpoint(app, SERVICE, "1.0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8002)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")
