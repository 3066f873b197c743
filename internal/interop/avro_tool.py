#!/usr/bin/env python3
"""Read and write valora's records using only the .avsc files in schemas/.

valora frames every value with Avro single-object encoding: the two bytes
C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's Parsing Canonical Form, then the Avro binary body. This tool does
that framing itself, with fastavro for the body, and knows nothing else
about valora.

Subcommands (JSON lines on stdout, diagnostics on stderr):

  fingerprint --schemas DIR
      One line per .avsc: {"schema", "fingerprint"} (the 8 framing bytes,
      hex).

  encode --schemas DIR --out DIR
      Reads JSON lines {"schema": "purchase", "file": "NAME", "record":
      {...}} from stdin, validates each record against DIR/<schema>.avsc,
      and writes its single-object encoding to OUT/NAME. Prints
      {"file", "schema", "bytes"} per record.

  decode --schemas DIR --schema NAME FILE...
      Decodes files that each hold one raw message value (for example as
      written by kcat) with DIR/<NAME>.avsc, after checking the magic bytes
      and the fingerprint. Prints {"file", "fingerprint", "value"} per file.

  consume --schemas DIR --schema NAME --brokers HOST:PORT --topic T
          --count N [--timeout SECONDS]
      Reads topic T from the beginning of every partition with the
      confluent-kafka client (librdkafka) until N records have arrived,
      decodes each like decode, and prints {"partition", "offset", "key",
      "fingerprint", "value"} per record, ordered by partition and offset.

  latest --schemas DIR --schema NAME --brokers HOST:PORT --topic T
         [--timeout SECONDS]
      Reads a compacted topic (customer_profile) from the beginning of every
      partition to the end offsets it finds when it starts, with
      read_committed, and keeps the last record of each key: a null value
      (a tombstone) removes the key. Prints {"key", "value"} per key left,
      sorted by key: the current value of every live key.

Timestamps (logical type timestamp-millis) are printed and read as integer
milliseconds since the Unix epoch, as on the wire. Exit status: 0 on
success, 1 when a value cannot be decoded or a topic not read in time, 2 on
a usage error.
"""

import argparse
import datetime
import io
import json
import os
import sys
import time

import fastavro
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import validate

MAGIC = b"\xc3\x01"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

# CRC-64-AVRO as the Avro specification gives it ("Schema Fingerprints").
# fastavro computes the same fingerprint; computing it here too pins the
# byte order of the framing independently of fastavro's hex convention.
_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_avro(data):
    fp = _CRC64_EMPTY
    for b in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ b) & 0xFF]
    return fp


class Schema:
    """One .avsc file: its parsed form and its single-object header."""

    def __init__(self, schemas_dir, name):
        path = os.path.join(schemas_dir, name + ".avsc")
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        self.name = name
        self.parsed = fastavro.parse_schema(raw)
        pcf = to_parsing_canonical_form(raw)
        fp = crc64_avro(pcf.encode("utf-8"))
        # The spec writes the 64-bit fingerprint little-endian.
        self.fingerprint = fp.to_bytes(8, "little")
        theirs = bytes.fromhex(fastavro_fingerprint(pcf, "CRC-64-AVRO"))
        if theirs != self.fingerprint:
            raise SystemExit(
                "%s: fastavro's CRC-64-AVRO %s differs from the spec's %s"
                % (path, theirs.hex(), self.fingerprint.hex())
            )
        self.header = MAGIC + self.fingerprint

    def encode(self, record):
        validate(record, self.parsed, raise_errors=True)
        buf = io.BytesIO()
        buf.write(self.header)
        fastavro.schemaless_writer(buf, self.parsed, record)
        return buf.getvalue()

    def decode(self, value):
        if len(value) < 10 or value[:2] != MAGIC:
            raise ValueError("not single-object encoded: starts with %s" % value[:2].hex())
        if value[2:10] != self.fingerprint:
            raise ValueError(
                "fingerprint %s is not that of %s.avsc (%s)"
                % (value[2:10].hex(), self.name, self.fingerprint.hex())
            )
        body = io.BytesIO(value[10:])
        record = fastavro.schemaless_reader(body, self.parsed, None)
        left = len(value) - 10 - body.tell()
        if left:
            raise ValueError("%d bytes left after the record" % left)
        return to_json(record)


def to_json(v):
    """Turns fastavro's logical-type values back into wire values."""
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    return v


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def cmd_fingerprint(args):
    for fn in sorted(os.listdir(args.schemas)):
        if fn.endswith(".avsc"):
            s = Schema(args.schemas, fn[: -len(".avsc")])
            emit({"schema": s.name, "fingerprint": s.fingerprint.hex()})
    return 0


def cmd_encode(args):
    schemas = {}
    os.makedirs(args.out, exist_ok=True)
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        item = json.loads(line)
        name = item["schema"]
        if name not in schemas:
            schemas[name] = Schema(args.schemas, name)
        fn = item["file"]
        if os.path.basename(fn) != fn or fn in ("", ".", ".."):
            raise SystemExit("line %d: file %r must be a plain file name" % (n, fn))
        try:
            value = schemas[name].encode(item["record"])
        except Exception as e:  # validation errors name the field
            raise SystemExit("line %d (%s): %s" % (n, fn, e))
        with open(os.path.join(args.out, fn), "wb") as f:
            f.write(value)
        emit({"file": fn, "schema": name, "bytes": len(value)})
    return 0


def cmd_decode(args):
    s = Schema(args.schemas, args.schema)
    status = 0
    for path in args.files:
        with open(path, "rb") as f:
            value = f.read()
        try:
            emit({"file": path, "fingerprint": value[2:10].hex(), "value": s.decode(value)})
        except Exception as e:
            print("%s: %s" % (path, e), file=sys.stderr)
            status = 1
    return status


def cmd_consume(args):
    # Imported here so that encode and decode need fastavro only.
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    s = Schema(args.schemas, args.schema)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": "valora-interop-%d" % os.getpid(),
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "client.id": "valora-interop-python",
        }
    )
    deadline = time.monotonic() + args.timeout
    try:
        parts = None
        while parts is None:
            md = consumer.list_topics(args.topic, timeout=5)
            t = md.topics.get(args.topic)
            if t is not None and t.error is None and t.partitions:
                parts = sorted(t.partitions)
            elif time.monotonic() > deadline:
                print("topic %s not found: %s" % (args.topic, t and t.error), file=sys.stderr)
                return 1
            else:
                time.sleep(0.1)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
        out = []
        status = 0
        while len(out) < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                print("%s: %d of %d records within %ss" % (args.topic, len(out), args.count, args.timeout),
                      file=sys.stderr)
                return 1
            msg = consumer.poll(min(left, 1.0))
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            value = msg.value() or b""
            key = msg.key()
            rec = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": None if key is None else key.decode("utf-8", "backslashreplace"),
                "fingerprint": value[2:10].hex(),
            }
            try:
                rec["value"] = s.decode(value)
            except Exception as e:
                print("%s[%d]@%d: %s" % (args.topic, msg.partition(), msg.offset(), e), file=sys.stderr)
                status = 1
                rec["error"] = str(e)
            out.append(rec)
    finally:
        consumer.close()
    for rec in sorted(out, key=lambda r: (r["partition"], r["offset"])):
        emit(rec)
    return status


def cmd_latest(args):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    s = Schema(args.schemas, args.schema)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": "valora-interop-%d" % os.getpid(),
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "client.id": "valora-interop-python",
        }
    )
    deadline = time.monotonic() + args.timeout
    latest = {}
    try:
        md = consumer.list_topics(args.topic, timeout=10)
        t = md.topics.get(args.topic)
        if t is None or t.error is not None:
            print("topic %s not found: %s" % (args.topic, t and t.error), file=sys.stderr)
            return 1
        ends = {}
        for p in sorted(t.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
            if high > 0:
                ends[p] = high
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in ends])
        # Transaction markers take offsets and are never delivered: a
        # partition is done once the consumer's position reaches its end.
        while ends:
            if time.monotonic() > deadline:
                print("%s: end offsets not reached within %ss" % (args.topic, args.timeout), file=sys.stderr)
                return 1
            msg = consumer.poll(0.5)
            if msg is not None:
                if msg.error():
                    raise KafkaException(msg.error())
                key = msg.key().decode("utf-8")
                if msg.value() is None:
                    latest.pop(key, None)
                else:
                    latest[key] = s.decode(msg.value())
            for tp in consumer.position([TopicPartition(args.topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        consumer.close()
    for key in sorted(latest):
        emit({"key": key, "value": latest[key]})
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_schemas(sp):
        sp.add_argument("--schemas", required=True, help="directory holding the .avsc files")
        return sp

    with_schemas(sub.add_parser("fingerprint", help="print each schema's single-object fingerprint"))
    sp = with_schemas(sub.add_parser("encode", help="encode JSON records from stdin to files"))
    sp.add_argument("--out", required=True, help="directory for the encoded values")
    sp = with_schemas(sub.add_parser("decode", help="decode files holding one value each"))
    sp.add_argument("--schema", required=True, help="schema name, e.g. tier_change")
    sp.add_argument("files", nargs="+")
    sp = with_schemas(sub.add_parser("consume", help="consume a topic and decode its values"))
    sp.add_argument("--schema", required=True, help="schema name, e.g. tier_change")
    sp.add_argument("--brokers", required=True)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--count", type=int, required=True, help="records to read")
    sp.add_argument("--timeout", type=float, default=30, help="seconds")
    sp = with_schemas(sub.add_parser("latest", help="the last value of each key of a compacted topic"))
    sp.add_argument("--schema", required=True, help="schema name, e.g. customer_profile")
    sp.add_argument("--brokers", required=True)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--timeout", type=float, default=30, help="seconds")
    args = p.parse_args(argv)
    return {
        "fingerprint": cmd_fingerprint,
        "encode": cmd_encode,
        "decode": cmd_decode,
        "consume": cmd_consume,
        "latest": cmd_latest,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
