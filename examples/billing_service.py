"""Billing service: an unchanged FastAPI app (no discovery helper, no /health).

The gateway discovers it through its /openapi.json.

    /usr/bin/python3 examples/billing_service.py --port 8003
"""

import argparse

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException

SERVICE = "billing"
app = FastAPI(title="billing", version="1.0")
bearer = HTTPBearer()
INVOICES = {"inv-1": {"id": "inv-1", "amount": 42.0}}


class NewInvoice(BaseModel):
    amount: float


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException):
    return JSONResponse({"service": SERVICE, "detail": exc.detail},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    return JSONResponse({"service": SERVICE, "detail": exc.errors()}, status_code=422)


@app.get("/billing/invoices", tags=["billing"])
def list_invoices():
    """List invoices."""
    return {"service": SERVICE, "invoices": list(INVOICES.values())}


@app.get("/billing/invoices/{invoice_id}", tags=["billing"])
def get_invoice(invoice_id: str):
    """Fetch one invoice."""
    if invoice_id not in INVOICES:
        raise HTTPException(404, f"invoice {invoice_id} not found")
    return {"service": SERVICE, "invoice": INVOICES[invoice_id]}


@app.post("/billing/invoices", tags=["billing"], status_code=201)
def create_invoice(new: NewInvoice,
                   creds: HTTPAuthorizationCredentials = Depends(bearer)):
    """Create an invoice (bearer token required)."""
    invoice = {"id": f"inv-{len(INVOICES) + 1}", "amount": new.amount}
    INVOICES[invoice["id"]] = invoice
    return {"service": SERVICE, "invoice": invoice}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8003)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info")
