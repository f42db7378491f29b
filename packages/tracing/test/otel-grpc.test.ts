/**
 * OTLP over gRPC: the drain thread exports a request tree to an in-process gRPC receiver on
 * 127.0.0.1 (raw TraceService/Export handler, protobuf decoded by the test decoder).
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import test from 'ava';
import { EventPipeline, requestTracingSubscriber } from '../src/index.js';
import { type DecodedSpan, decodeTraceRequest } from './fixtures/otlp-proto.js';

const identity = (b: Buffer): Buffer => b;
const TRACE_SERVICE: ServiceDefinition = {
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

test('exporter otlp-grpc delivers the tree to a gRPC receiver', async (t) => {
  const spans: DecodedSpan[] = [];
  const server = new Server();
  server.addService(TRACE_SERVICE, {
    Export: (call: { request: Buffer }, callback: (err: null, res: Buffer) => void) => {
      spans.push(...decodeTraceRequest(call.request));
      callback(null, Buffer.alloc(0));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const pipeline = new EventPipeline({
    subscribers: [requestTracingSubscriber({ exporter: 'otlp-grpc', endpoint: `http://127.0.0.1:${port}` })],
  });
  await pipeline.start();
  const pub = pipeline.publisher;
  pub.publish('MP_REQUEST_START', 'g', {});
  pub.publish('MP_RETRIEVE_SUBMITTED', 'g', { device: 'cuda:0' }, { opId: 5, workerId: 0 });
  pub.publish('MP_REQUEST_END', 'g', {});
  pub.publish(
    'MP_RETRIEVE_START',
    'g',
    { device: 'cuda:0', engine_id: 'e', model_name: 'm' },
    { opId: 5, workerId: 0 },
  );
  pub.publish(
    'MP_RETRIEVE_END',
    'g',
    {
      device: 'cuda:0',
      engine_id: 'e',
      model_name: 'm',
      retrieved_count: 2,
      total_bytes: 2048,
      num_tokens: 32,
      success: true,
    },
    { opId: 5, workerId: 0 },
  );
  await pipeline.stop();
  server.forceShutdown();

  t.deepEqual(spans.map((s) => s.name).sort(), ['mp.retrieve', 'request']);
  const root = spans.find((s) => s.name === 'request');
  const retrieve = spans.find((s) => s.name === 'mp.retrieve');
  t.is(retrieve?.parentSpanId, root?.spanId);
  t.is(retrieve?.attributes.total_bytes, 2048n, 'integral numbers travel as intValue');
  t.is(retrieve?.attributes.worker_id, 0n);
  t.is(root?.resource['service.name'], 'kvmp');
  t.true((root?.endTimeUnixNano ?? 0n) <= (retrieve?.endTimeUnixNano ?? 0n), 'root stamped with REQUEST_END');
});
