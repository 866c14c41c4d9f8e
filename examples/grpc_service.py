"""grpc_service.py: a gRPC server with server reflection and health checking,
as the gateway discovers it with format=grpc.

    python3 examples/grpc_service.py --port 50051 --service shop.Catalog

Serves one service of examples/protos (shop.Catalog, billing.Ledger or
vault.Safe), in cleartext or over TLS (--tls);
every answer's served_by names the server (--name).  The reflection
services (grpc.reflection.v1 and v1alpha) and grpc.health.v1.Health are
written here against the generated messages, as a server without
grpcio-reflection and grpcio-health-checking would have them.
"""

import argparse
import signal
import sys
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2

from grpc_stubs import Stubs

HEALTH = "grpc.health.v1.Health"


def app_handler(stubs, file, service_name, label):
    """A generic handler for the service as the file descriptor declares it."""
    Note = stubs.package(service_name).Note
    short = service_name.split(".")[-1]
    declared = next(s for s in file.service if s.name == short)

    def unary(request, context):
        return Note(text=request.text, served_by=label)

    def client_streaming(requests, context):
        return Note(text=",".join(n.text for n in requests), served_by=label)

    def server_streaming(request, context):
        for i in range(3):
            yield Note(text=f"{request.text} {i}", served_by=label)

    def bidi(requests, context):
        for n in requests:
            yield Note(text=n.text, served_by=label)

    kinds = {
        (False, False): (grpc.unary_unary_rpc_method_handler, unary),
        (True, False): (grpc.stream_unary_rpc_method_handler, client_streaming),
        (False, True): (grpc.unary_stream_rpc_method_handler, server_streaming),
        (True, True): (grpc.stream_stream_rpc_method_handler, bidi),
    }
    methods = {}
    for method in declared.method:
        make, behaviour = kinds[(method.client_streaming, method.server_streaming)]
        methods[method.name] = make(behaviour, request_deserializer=Note.FromString,
                                    response_serializer=Note.SerializeToString)
    return grpc.method_handlers_generic_handler(service_name, methods)


def health_handler(stubs, serving):
    pb2 = stubs.health
    status = (pb2.HealthCheckResponse.SERVING if serving
              else pb2.HealthCheckResponse.NOT_SERVING)

    def check(request, context):
        return pb2.HealthCheckResponse(status=status)

    return grpc.method_handlers_generic_handler(HEALTH, {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=pb2.HealthCheckRequest.FromString,
            response_serializer=pb2.HealthCheckResponse.SerializeToString),
    })


def reflection_handler(pb2, version, names, files):
    """ServerReflectionInfo: list_services and file_containing_symbol, the
    file alone (no dependencies); NOT_FOUND for anything else."""

    def info(requests, context):
        for request in requests:
            which = request.WhichOneof("message_request")
            answer = pb2.ServerReflectionResponse(valid_host=request.host,
                                                  original_request=request)
            if which == "list_services":
                answer.list_services_response.service.extend(
                    pb2.ServiceResponse(name=name) for name in names)
            elif which == "file_containing_symbol" and request.file_containing_symbol in files:
                answer.file_descriptor_response.file_descriptor_proto.append(
                    files[request.file_containing_symbol])
            else:
                answer.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                answer.error_response.error_message = f"not found: {which}"
            yield answer

    return grpc.method_handlers_generic_handler(f"grpc.reflection.{version}.ServerReflection", {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            info, request_deserializer=pb2.ServerReflectionRequest.FromString,
            response_serializer=pb2.ServerReflectionResponse.SerializeToString),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", default="shop.Catalog",
                        choices=["shop.Catalog", "billing.Ledger", "vault.Safe"])
    parser.add_argument("--name", help="served_by in the answers (default: the service)")
    parser.add_argument("--add-method", action="append", default=[], metavar="NAME",
                        help="a unary method more, as a new release of the service would add")
    parser.add_argument("--reflection", default="both", choices=["v1", "v1alpha", "both", "none"])
    parser.add_argument("--health", default="serving", choices=["serving", "not-serving", "none"])
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                        help="serve over TLS (PEM files), as a grpcs:// service")
    args = parser.parse_args()

    stubs = Stubs()
    module = stubs.package(args.service)
    file = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    short = args.service.split(".")[-1]
    declared = next(s for s in file.service if s.name == short)
    for name in args.add_method:
        declared.method.add(name=name, input_type=f".{file.package}.Note",
                            output_type=f".{file.package}.Note")

    handlers = [app_handler(stubs, file, args.service, args.name or args.service)]
    files = {args.service: file.SerializeToString()}
    if args.health != "none":
        handlers.append(health_handler(stubs, args.health == "serving"))
        files[HEALTH] = stubs.health.DESCRIPTOR.serialized_pb
    versions = {"v1": ["v1"], "v1alpha": ["v1alpha"], "both": ["v1", "v1alpha"],
                "none": []}[args.reflection]
    for version in versions:
        files[f"grpc.reflection.{version}.ServerReflection"] = getattr(
            stubs, f"reflection_{version}").DESCRIPTOR.serialized_pb
    for version in versions:
        handlers.append(reflection_handler(getattr(stubs, f"reflection_{version}"), version,
                                           list(files), files))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=handlers)
    if args.tls:
        cert, key = (open(path, "rb").read() for path in args.tls)
        server.add_secure_port(f"127.0.0.1:{args.port}",
                               grpc.ssl_server_credentials([(key, cert)]))
    else:
        server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"serving {args.service} on 127.0.0.1:{args.port}", flush=True)

    def stop(signum, frame):
        server.stop(0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
