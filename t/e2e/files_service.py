"""Files service: {x:path} parameters in the middle of a template.

    /usr/bin/python3 t/e2e/files_service.py --port 8012

Every route answers with the template Starlette ran ("route") and the
parameters it took ("params"), so that an answer through the gateway can
be compared with the answer to the same path sent to the service directly.
"/files/{name}/meta" is declared first: Starlette then runs it for
"/files/x/meta", as the gateway does (a plain parameter before {x:path}).
"""

import argparse
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

try:
    from nginx_discovery import create_service_health_endpoint
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from nginx_discovery import create_service_health_endpoint

SERVICE = "files"
app = FastAPI(title=SERVICE)


def answer(request: Request):
    return {"route": request.scope["route"].path, "params": request.path_params}


@app.get("/files/{name}/meta")
def named_meta(name: str, request: Request):
    return answer(request)


@app.get("/files/{p:path}/meta")
def meta(p: str, request: Request):
    return answer(request)


@app.get("/files/{p:path}/rev/{n:int}")
def revision(p: str, n: int, request: Request):
    return answer(request)


create_service_health_endpoint(app, SERVICE, "1.0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8012)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")
