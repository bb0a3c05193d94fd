import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { uuidv5 } from '../server/ingest-adapters/deterministic-ids.ts';
import {
  decodeLogsJson,
  decodeLogsProtobuf,
  decodeTraceJson,
  decodeTraceProtobuf,
  OTLP_DECODE_LIMITS,
  OtlpDecodeError,
} from '../server/ingest-adapters/otlp/otlp-decode.ts';
import { ProtobufReader, ProtobufWriter, WIRE } from '../server/ingest-adapters/otlp/protobuf-wire.ts';

const w = () => new ProtobufWriter();
const keyValue = (key: string, value: ProtobufWriter) => w().string(1, key).message(2, value);
const stringValue = (text: string) => w().string(1, text);

function logsRequest(records: ProtobufWriter[], resource = w().message(1, keyValue('service.name', stringValue('checkout')))): Uint8Array {
  const scopeLogs = w().message(1, w().string(1, 'app.scope').string(2, '1.0.0'));
  for (const record of records) scopeLogs.message(2, record);
  return w().message(1, w().message(1, resource).message(2, scopeLogs)).finish();
}

describe('OTLP protobuf reader', () => {
  it('derives version 5 UUIDs equal to the RFC 9562 algorithm for known vectors', () => {
    expect(uuidv5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(uuidv5('6ba7b811-9dad-11d1-80b4-00c04fd430c8', 'https://example.com/ü')).toBe('a17f7a1d-6bb5-51a9-9d32-f9d2fdeec8b6');
  });

  it('reads back every scalar the writer encodes, 64-bit values included', () => {
    const bytes = w()
      .varint(1, 2n ** 63n + 5n)
      .fixed64(2, 1_796_065_127_698_123_456n)
      .fixed32(3, 0xdeadbeef)
      .double(4, -1.5)
      .string(5, 'héllo')
      .bytes(6, Uint8Array.of(1, 2))
      .varint(7, -3)
      .finish();
    const reader = new ProtobufReader(bytes);
    const read: unknown[] = [];
    while (!reader.done()) {
      const { field, wireType } = reader.tag();
      if (field === 1) read.push(reader.varint64());
      else if (field === 2) read.push(reader.fixed64());
      else if (field === 3) read.push(reader.fixed32());
      else if (field === 4) read.push(reader.double());
      else if (field === 5) read.push(reader.string());
      else if (field === 6) read.push([...reader.bytesField()]);
      else if (field === 7) read.push(reader.int64());
      else reader.skipField(wireType);
    }
    expect(read).toEqual([2n ** 63n + 5n, 1_796_065_127_698_123_456n, 0xdeadbeef, -1.5, 'héllo', [1, 2], -3n]);
  });

  it('decodes a handmade log export into records with their resource, scope, times, ids and nested values', () => {
    const record = w()
      .fixed64(1, 1_796_065_127_698_123_456n)
      .fixed64(11, 1_796_065_127_700_000_000n)
      .varint(2, 17)
      .string(3, 'ERROR')
      .message(5, stringValue('payment failed'))
      .message(6, keyValue('attempt', w().varint(3, -2)))
      .message(6, keyValue('big', w().varint(3, 2n ** 62n)))
      .message(6, keyValue('ok', w().varint(2, 1)))
      .message(6, keyValue('ratio', w().double(4, 0.25)))
      .message(6, keyValue('list', w().message(5, w().message(1, stringValue('a')).message(1, w().varint(3, 1)))))
      .message(6, keyValue('map', w().message(6, w().message(1, keyValue('inner', stringValue('x'))))))
      .message(6, keyValue('raw', w().bytes(7, Uint8Array.of(0xff, 0x00))))
      .bytes(
        9,
        Uint8Array.from({ length: 16 }, (_, i) => i),
      )
      .bytes(
        10,
        Uint8Array.from({ length: 8 }, (_, i) => 0xa0 + i),
      )
      .string(12, 'payment.failed')
      .varint(99, 7); // unknown field: skipped
    const [decoded, ...rest] = decodeLogsProtobuf(logsRequest([record]));
    expect(rest).toEqual([]);
    expect(decoded).toEqual({
      resource: { 'service.name': 'checkout' },
      scope: { name: 'app.scope', version: '1.0.0', attributes: {} },
      record: {
        timeUnixNano: '1796065127698123456',
        observedTimeUnixNano: '1796065127700000000',
        severityNumber: 17,
        severityText: 'ERROR',
        body: 'payment failed',
        attributes: { attempt: -2, big: String(2n ** 62n), ok: true, ratio: 0.25, list: ['a', 1], map: { inner: 'x' }, raw: '/wA=' },
        traceId: '000102030405060708090a0b0c0d0e0f',
        spanId: 'a0a1a2a3a4a5a6a7',
        eventName: 'payment.failed',
      },
    });
  });

  it('decodes a handmade span with its parent, kind, times and status', () => {
    const span = w()
      .bytes(
        1,
        Uint8Array.from({ length: 16 }, () => 0x11),
      )
      .bytes(
        2,
        Uint8Array.from({ length: 8 }, () => 0x22),
      )
      .bytes(
        4,
        Uint8Array.from({ length: 8 }, () => 0x33),
      )
      .string(5, 'GET /orders/:id')
      .varint(6, 2)
      .fixed64(7, 1_000_000_000n)
      .fixed64(8, 1_012_500_000n)
      .message(9, keyValue('http.route', stringValue('/orders/:id')))
      .message(15, w().string(2, 'boom').varint(3, 2));
    const request = w()
      .message(1, w().message(2, w().message(1, w().string(1, 'http')).message(2, span)))
      .finish();
    expect(decodeTraceProtobuf(request)).toEqual([
      {
        resource: {},
        scope: { name: 'http', version: '', attributes: {} },
        record: {
          traceId: '11'.repeat(16),
          spanId: '22'.repeat(8),
          parentSpanId: '33'.repeat(8),
          name: 'GET /orders/:id',
          kind: 2,
          startTimeUnixNano: '1000000000',
          endTimeUnixNano: '1012500000',
          attributes: { 'http.route': '/orders/:id' },
          status: { code: 2, message: 'boom' },
        },
      },
    ]);
  });

  it('reads an empty request as no records', () => {
    expect(decodeLogsProtobuf(new Uint8Array())).toEqual([]);
  });

  it('refuses truncated input at every cut with a malformed-protobuf error', () => {
    const bytes = logsRequest([w().fixed64(1, 5n).message(5, stringValue('hello'))]);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      expect(() => decodeLogsProtobuf(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(OtlpDecodeError);
    }
  });

  it('refuses group wire types, field number zero, wrong wire types and invalid UTF-8', () => {
    expect(() => decodeLogsProtobuf(Uint8Array.of((1 << 3) | 3))).toThrow(/wire type 3/);
    expect(() => decodeLogsProtobuf(Uint8Array.of(0x00, 0x00))).toThrow(/Field number 0/);
    expect(() => decodeLogsProtobuf(logsRequest([w().varint(1, 5)]))).toThrow(/Field 1 has wire type 0/);
    expect(() => decodeLogsProtobuf(logsRequest([w().bytes(3, Uint8Array.of(0xff, 0xfe))]))).toThrow(/Invalid UTF-8/);
    expect(() => decodeLogsProtobuf(Uint8Array.of(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))).toThrow(/Varint longer/);
  });

  it('refuses a value nested deeper than the bound instead of recursing without end', () => {
    let value = stringValue('leaf');
    for (let depth = 0; depth < OTLP_DECODE_LIMITS.maxValueDepth + 1; depth += 1) value = w().message(5, w().message(1, value));
    expect(() => decodeLogsProtobuf(logsRequest([w().message(5, value)]))).toThrow(/nested deeper than 16/);
    let fits = stringValue('leaf');
    for (let depth = 0; depth < OTLP_DECODE_LIMITS.maxValueDepth - 1; depth += 1) fits = w().message(5, w().message(1, fits));
    expect(decodeLogsProtobuf(logsRequest([w().message(5, fits)]))).toHaveLength(1);
  });

  it('refuses more records than one request may hold', () => {
    const empty = w().varint(2, 9);
    expect(decodeLogsProtobuf(logsRequest(Array.from({ length: OTLP_DECODE_LIMITS.maxRecords }, () => empty)))).toHaveLength(OTLP_DECODE_LIMITS.maxRecords);
    expect(() => decodeLogsProtobuf(logsRequest(Array.from({ length: OTLP_DECODE_LIMITS.maxRecords + 1 }, () => empty)))).toThrow(/More than 10000 records/);
  });

  it('stores NUL and lone surrogates in strings as replacement characters', () => {
    const [decoded] = decodeLogsProtobuf(logsRequest([w().message(5, stringValue('a\u0000b'))]));
    expect(decoded?.record.body).toBe('a\uFFFDb');
    expect(WIRE.lengthDelimited).toBe(2);
  });

  it('reads what the OpenTelemetry JS serializers encode in protobuf exactly as what they encode in JSON', async () => {
    const logs = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logs })] });
    const logger = loggerProvider.getLogger('orders', '1.2.3');
    logger.emit({
      body: { text: 'placed', lines: [1, 2.5, 'x', true] },
      severityNumber: 17,
      severityText: 'ERROR',
      eventName: 'order.placed',
      timestamp: new Date('2026-11-30T10:00:00.123Z'),
      attributes: { count: 3, ratio: 0.5, ok: false, tags: ['a', 'b'], 'exception.type': 'TypeError', negative: -7 },
    });
    logger.emit({ body: 'plain', severityNumber: 9 });
    await loggerProvider.forceFlush();
    const records = logs.getFinishedLogRecords();
    expect(records).toHaveLength(2);
    const logsProto = ProtobufLogsSerializer.serializeRequest(records);
    const logsJson = JsonLogsSerializer.serializeRequest(records);
    if (!logsProto || !logsJson) throw new Error('the serializers produced nothing');
    const fromProto = decodeLogsProtobuf(logsProto);
    expect(fromProto).toEqual(decodeLogsJson(logsJson));
    expect(fromProto[0]?.record).toMatchObject({ eventName: 'order.placed', severityNumber: 17, body: { text: 'placed', lines: [1, 2.5, 'x', true] } });
    expect(fromProto[0]?.scope).toMatchObject({ name: 'orders', version: '1.2.3' });

    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const tracer = tracerProvider.getTracer('http');
    const parent = tracer.startSpan('GET', { kind: 1, startTime: 1_700_000_000_000, attributes: { 'http.route': '/x', 'http.response.status_code': 500 } });
    parent.setStatus({ code: 2, message: 'failed' });
    parent.addEvent('retry', { attempt: 2 });
    parent.end(1_700_000_000_012);
    await tracerProvider.forceFlush();
    const finished = spans.getFinishedSpans();
    const traceProto = ProtobufTraceSerializer.serializeRequest(finished);
    const traceJson = JsonTraceSerializer.serializeRequest(finished);
    if (!traceProto || !traceJson) throw new Error('the serializers produced nothing');
    const spansFromProto = decodeTraceProtobuf(traceProto);
    expect(spansFromProto).toEqual(decodeTraceJson(traceJson));
    expect(spansFromProto[0]?.record).toMatchObject({
      name: 'GET',
      kind: 2,
      traceId: parent.spanContext().traceId,
      spanId: parent.spanContext().spanId,
      startTimeUnixNano: '1700000000000000000',
      endTimeUnixNano: '1700000000012000000',
      status: { code: 2, message: 'failed' },
    });
    await Promise.all([loggerProvider.shutdown(), tracerProvider.shutdown()]);
  });
});
