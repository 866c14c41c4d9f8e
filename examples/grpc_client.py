"""grpc_client.py: calls a method of the demo's gRPC services, through the
gateway (HTTP/2 with prior knowledge) or straight to a server.

    python3 examples/grpc_client.py 127.0.0.1:8443 /shop.Catalog/Get hello
    python3 examples/grpc_client.py 127.0.0.1:8443 /shop.Catalog/Chat a b c

Prints each answer, or the gRPC status of a failed call (the gateway's own
UNIMPLEMENTED, UNAVAILABLE or INVALID_ARGUMENT among them) and exits 1.
"""

import argparse
import sys

import grpc

from grpc_stubs import STREAMING, Stubs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="host:port")
    parser.add_argument("method", help="/package.Service/Method")
    parser.add_argument("texts", nargs="*", default=["hello"])
    args = parser.parse_args()

    stubs = Stubs()
    service, _, name = args.method.lstrip("/").partition("/")
    Note = stubs.package(service).Note if service.split(".")[0] in ("shop", "billing", "vault") \
        else stubs.shop.Note
    client_streams, server_streams = STREAMING.get(name, (False, False))
    kind = {(False, False): "unary_unary", (True, False): "stream_unary",
            (False, True): "unary_stream", (True, True): "stream_stream"}
    with grpc.insecure_channel(args.target) as channel:
        call = getattr(channel, kind[(client_streams, server_streams)])(
            args.method, request_serializer=Note.SerializeToString,
            response_deserializer=Note.FromString)
        notes = [Note(text=t) for t in args.texts]
        try:
            answer = call(iter(notes) if client_streams else notes[0], timeout=5)
            for note in (answer if server_streams else [answer]):
                print(f"{note.served_by}: {note.text}")
        except grpc.RpcError as error:
            print(f"{error.code().name} ({error.code().value[0]}): {error.details()}")
            sys.exit(1)


if __name__ == "__main__":
    main()
