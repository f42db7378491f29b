/**
 * Entry point of the GPU worker thread. Nothing else in the process touches CUDA: this thread
 * owns the context, the streams and the copy engines, and talks to the rest over comlink.
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { nodeEndpoint } from '../shared/node-endpoint.js';
import { WorkerEndpoint } from './worker-endpoint.js';

if (parentPort === null) throw new Error('gpu-worker main.ts must run as a worker thread');
Comlink.expose(new WorkerEndpoint(), nodeEndpoint(parentPort));
