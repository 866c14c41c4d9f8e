"""grpc_stubs.py: protobuf messages for the demo's gRPC service and client.

The messages are generated when a process starts, by python3-grpc-tools'
protoc from grpc-proto's health and reflection protos and examples/protos,
into a temporary directory, and loaded by file path: their module names
(grpc.health.v1...) would collide with the installed grpc package.  Only
the messages are used; services are registered as generic handlers and
called by path, so no generated service code is needed.
"""

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRPC_PROTO = Path("/usr/share/grpc-proto")

PROTOS = {
    "health": "grpc/health/v1/health.proto",
    "reflection_v1": "grpc/reflection/v1/reflection.proto",
    "reflection_v1alpha": "grpc/reflection/v1alpha/reflection.proto",
    "shop": "shop.proto",
    "billing": "billing.proto",
    "vault": "vault.proto",
}

# method name -> (client streams, server streams), as the protos say
STREAMING = {
    "Get": (False, False),
    "Upload": (True, False),
    "Watch": (False, True),
    "Chat": (True, True),
    "Charge": (False, False),
    "History": (False, True),
    "Open": (False, False),
}


class Stubs:
    """The generated modules, by PROTOS key: stubs.shop.Note and so on."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="grpc-stubs-"))
        try:
            subprocess.run(
                [sys.executable, "-m", "grpc_tools.protoc", f"-I{GRPC_PROTO}",
                 f"-I{HERE / 'protos'}", f"--python_out={self.directory}", *PROTOS.values()],
                check=True)
            for key, proto in PROTOS.items():
                path = self.directory / proto.replace(".proto", "_pb2.py")
                spec = importlib.util.spec_from_file_location(f"_demo_stub_{key}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                setattr(self, key, module)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def package(self, service):
        """The generated module of a full service name: shop.Catalog -> stubs.shop."""
        return getattr(self, service.split(".")[0])
