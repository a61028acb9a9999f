#!/usr/bin/env python3
"""Reads a large group the way a plain gRPC client in another language does.

Only grpc (Debian's python3-grpcio) and google.protobuf (python3-protobuf) are used:
no generated code. The message classes come from the FileDescriptorSet that
`buf build --as-file-descriptor-set` writes, and the channel keeps gRPC's default
limits, among them the 4 MB cap on a received message. A server that answers a big
List or snapshot in one message fails here with RESOURCE_EXHAUSTED.

Usage:
  page-and-snapshot.py HOST:PORT DESCRIPTORS STREAM GROUP EXPECTED_IDS
      EXPECTED_IDS is a file of the group's item ids in insertion order, one a line.
      Prints one JSON line (pages, chunks, largest messages) and exits 0, or prints
      each failed check to stderr and exits 1.
  page-and-snapshot.py --dry-run DESCRIPTORS
      Only builds the message classes and round-trips a request and a snapshot.
"""

import json
import sys

import grpc
from google.protobuf import __version__ as protobuf_version
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "/iii.stream.v1.StreamService/"
MESSAGES = ("ListRequest", "ListResponse", "SubscribeRequest", "SubscribeResponse")
# Generous: a slow CI machine, not a hung server, is what this must tolerate.
RPC_TIMEOUT_S = 120


class Failure(Exception):
    """Checks that did not hold; each argument says what was expected and seen."""


def load_messages(path):
    """Message classes by short name, built from a FileDescriptorSet."""
    file_set = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        file_set.ParseFromString(f.read())
    # A fresh pool: the default one already holds google/protobuf/struct.proto, and a
    # second copy of it there would clash.
    pool = descriptor_pool.DescriptorPool()
    by_name = {file.name: file for file in file_set.file}
    added = set()

    def add(name):
        # A pool needs every import before the file that imports it.
        if name in added:
            return
        added.add(name)
        for dependency in by_name[name].dependency:
            add(dependency)
        pool.AddSerializedFile(by_name[name].SerializeToString())

    for name in by_name:
        add(name)

    if hasattr(message_factory, "GetMessageClass"):
        # protobuf 4.22 and later; MessageFactory.GetPrototype is gone in later releases.
        class_of = message_factory.GetMessageClass
    else:
        # Older protobuf, such as Debian 12's 4.21.
        class_of = message_factory.MessageFactory(pool).GetPrototype
    return {name: class_of(pool.FindMessageTypeByName("iii.stream.v1." + name)) for name in MESSAGES}


class Largest:
    """The size of the largest message received, per call kind."""

    def __init__(self):
        self.bytes = {}

    def deserializer(self, kind, message_class):
        def parse(data):
            self.bytes[kind] = max(self.bytes.get(kind, 0), len(data))
            return message_class.FromString(data)

        return parse


def rpc_failure(what, error):
    return Failure(f"{what}: {error.code().name}: {error.details()}")


def compare_ids(what, seen, expected):
    """The ids a read returned must be the group's, each once, in insertion order."""
    counts = {}
    for item_id in seen:
        counts[item_id] = counts.get(item_id, 0) + 1
    duplicates = sorted(item_id for item_id, n in counts.items() if n > 1)
    if duplicates:
        raise Failure(f"{what}: {len(duplicates)} ids more than once, e.g. {duplicates[:3]}")
    missing = [item_id for item_id in expected if item_id not in counts]
    expected_set = set(expected)
    extra = [item_id for item_id in seen if item_id not in expected_set]
    if missing or extra:
        raise Failure(f"{what}: {len(seen)} items, {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")
    for index, (got, want) in enumerate(zip(seen, expected)):
        if got != want:
            raise Failure(f"{what}: not in insertion order: item {index} is {got!r}, expected {want!r}")


def text_chars(items):
    return sum(len(item.data.string_value) for item in items)


def page_through(channel, messages, largest, stream, group, expected):
    list_call = channel.unary_unary(
        SERVICE + "List",
        request_serializer=messages["ListRequest"].SerializeToString,
        response_deserializer=largest.deserializer("list", messages["ListResponse"]),
    )
    ids, page_items, chars, token = [], [], 0, ""
    while True:
        # page_size 0: the server's default page size.
        request = messages["ListRequest"](stream_name=stream, group_id=group, page_size=0, page_token=token)
        try:
            response = list_call(request, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            raise rpc_failure(f"List page {len(page_items) + 1}", error) from None
        page_items.append(len(response.items))
        ids.extend(item.item_id for item in response.items)
        chars += text_chars(response.items)
        token = response.next_page_token
        if not token:
            break
        if len(page_items) > len(expected) + 1:
            raise Failure(f"List: still a next_page_token after {len(page_items)} pages")
    compare_ids("List", ids, expected)
    return {"pages": len(page_items), "pageItems": page_items, "listTextChars": chars}


def read_snapshot(channel, messages, largest, stream, group, expected):
    subscribe = channel.unary_stream(
        SERVICE + "Subscribe",
        request_serializer=messages["SubscribeRequest"].SerializeToString,
        response_deserializer=largest.deserializer("snapshot", messages["SubscribeResponse"]),
    )
    call = subscribe(messages["SubscribeRequest"](stream_name=stream, group_id=group), timeout=RPC_TIMEOUT_S)
    ids, chunks, chars, offset = [], 0, 0, None
    try:
        for response in call:
            kind = response.WhichOneof("message")
            if kind != "snapshot":
                raise Failure(f"Subscribe: a {kind} after {chunks} snapshot chunks, before the one without more")
            snapshot = response.snapshot
            if offset is None:
                offset = snapshot.offset
            elif snapshot.offset != offset:
                raise Failure(f"Subscribe: chunk {chunks + 1} has offset {snapshot.offset}, the first had {offset}")
            chunks += 1
            ids.extend(item.item_id for item in snapshot.items)
            chars += text_chars(snapshot.items)
            if not snapshot.more:
                break
        else:
            raise Failure(f"Subscribe: the stream ended after {chunks} chunks, all with more set")
    except grpc.RpcError as error:
        raise rpc_failure(f"Subscribe after {chunks} snapshot chunks", error) from None
    finally:
        # Only the snapshot is wanted: end the subscription.
        call.cancel()
    compare_ids("Subscribe snapshot", ids, expected)
    return {"chunks": chunks, "snapshotOffset": offset, "snapshotTextChars": chars}


def refuse_bad_pages(channel, messages, stream, group):
    list_call = channel.unary_unary(
        SERVICE + "List",
        request_serializer=messages["ListRequest"].SerializeToString,
        response_deserializer=messages["ListResponse"].FromString,
    )
    cases = {
        "page_token garbage": messages["ListRequest"](stream_name=stream, group_id=group, page_token="garbage"),
        "page_size -1": messages["ListRequest"](stream_name=stream, group_id=group, page_size=-1),
    }
    codes, problems = {}, []
    for label, request in cases.items():
        try:
            list_call(request, timeout=RPC_TIMEOUT_S)
            problems.append(f"List with {label}: expected INVALID_ARGUMENT, the call succeeded")
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                codes[label] = error.code().name
            else:
                problems.append(f"List with {label}: expected INVALID_ARGUMENT, got {error.code().name}: {error.details()}")
    if problems:
        raise Failure(*problems)
    return {"badInputs": codes}


def dry_run(descriptors):
    messages = load_messages(descriptors)
    request = messages["ListRequest"](stream_name="s", group_id="g", page_size=-1, page_token="t")
    again = messages["ListRequest"].FromString(request.SerializeToString())
    response = messages["SubscribeResponse"]()
    response.snapshot.more = True
    response.snapshot.offset = 7
    parsed = messages["SubscribeResponse"].FromString(response.SerializeToString())
    ok = again == request and parsed.WhichOneof("message") == "snapshot" and parsed.snapshot.more
    print(json.dumps({"dryRun": ok, "grpc": grpc.__version__, "protobuf": protobuf_version}))
    return 0 if ok else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--dry-run":
        return dry_run(argv[2])
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    target, descriptors, stream, group, expected_path = argv[1:]
    messages = load_messages(descriptors)
    with open(expected_path, encoding="utf-8") as f:
        expected = f.read().split()
    largest = Largest()
    summary = {"items": len(expected), "grpc": grpc.__version__, "protobuf": protobuf_version}
    failures = []
    # No channel options: the defaults, 4 MB receive limit included, are what is tested.
    with grpc.insecure_channel(target) as channel:
        # Each check runs even when an earlier one failed, so one run shows them all.
        for check in (
            lambda: page_through(channel, messages, largest, stream, group, expected),
            lambda: read_snapshot(channel, messages, largest, stream, group, expected),
            lambda: refuse_bad_pages(channel, messages, stream, group),
        ):
            try:
                summary.update(check())
            except Failure as failure:
                failures.extend(failure.args)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if failures:
        return 1
    summary["largestPageBytes"] = largest.bytes.get("list", 0)
    summary["largestChunkBytes"] = largest.bytes.get("snapshot", 0)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
