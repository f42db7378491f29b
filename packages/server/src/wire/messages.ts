import type { TraceCarrier } from '@kvmp/tracing';
import { DTYPE_BYTES } from '../engine/layout.js';
import type { KvDtype, KvLayoutSpec } from '../gpu/contract.js';
import { bin, int, intArray, map, optBin, optInt, optStr, type Payload, str, tokens, traceCarrier } from './fields.js';
import { CUDA_IPC_HANDLE_BYTES } from './protocol.js';
import { badField } from './wire-error.js';

/**
 * Payload schemas: each parser turns a decoded msgpack map (snake_case keys, see
 * docs/protocol.md) into the typed request the handlers use. Range, salt and instance checks
 * that need server state are left to the core, which answers with its own error codes.
 */

export interface HelloMsg {
  readonly protocolVersion: number;
  readonly client: string | undefined;
}

export function parseHello(p: Payload): HelloMsg {
  return { protocolVersion: int(p, 'protocol_version', 0, 0xffff), client: optStr(p, 'client', 128) };
}

interface InstanceFields {
  readonly instanceId: string;
  readonly modelName: string;
  readonly worldSize: number | undefined;
  readonly rank: number | undefined;
  readonly workerId: number | undefined;
  readonly engineId: string | undefined;
}

function instanceFields(p: Payload): InstanceFields {
  return {
    instanceId: str(p, 'instance_id', 256),
    modelName: str(p, 'model_name', 256),
    worldSize: optInt(p, 'world_size', 1, 255),
    rank: optInt(p, 'rank', 0, 254),
    workerId: optInt(p, 'worker_id', 0, 65535),
    engineId: optStr(p, 'engine_id', 256),
  };
}

function dtype(p: Payload, key: string): KvDtype {
  const d = p[key];
  if (typeof d !== 'string' || !Object.hasOwn(DTYPE_BYTES, d)) {
    throw badField(`${key} must be one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  return d as KvDtype;
}

const MAX_DIM = 1 << 24;

/** The KV layout. `num_blocks` is required for CUDA IPC registrations only. */
export function parseLayout(p: Payload, numBlocksDefault?: number): KvLayoutSpec {
  const l = map(p, 'layout');
  const kind = l.kind;
  const numBlocks =
    numBlocksDefault === undefined
      ? int(l, 'num_blocks', 1, MAX_DIM)
      : (optInt(l, 'num_blocks', 1, MAX_DIM) ?? numBlocksDefault);
  const common = {
    numLayers: int(l, 'num_layers', 1, 4096),
    numBlocks,
    blockSize: int(l, 'block_size', 1, 1 << 16),
    dtype: dtype(l, 'dtype'),
  };
  if (kind === 'mla') return { kind: 'mla', ...common, headDim: int(l, 'head_dim', 1, 1 << 20) };
  if (kind === 'flash_attn') {
    return {
      kind: 'flash_attn',
      ...common,
      numHeads: int(l, 'num_heads', 1, 4096),
      headSize: int(l, 'head_size', 1, 1 << 16),
    };
  }
  throw badField('layout.kind must be "flash_attn" or "mla"');
}

/** One layer tensor exported by the engine as a raw CUDA IPC memory handle. */
export interface CudaLayerMsg {
  readonly ipcHandle: Uint8Array;
  /** Byte offset of the tensor in the allocation the handle maps. */
  readonly offset: number;
  readonly shape: readonly number[];
  /** In elements, as torch reports them. */
  readonly stride: readonly number[];
  readonly dtype: KvDtype;
}

export interface RegisterKvCacheMsg extends InstanceFields {
  readonly layout: KvLayoutSpec;
  readonly deviceUuid: string;
  readonly layers: readonly CudaLayerMsg[];
}

const UUID = /^(GPU-)?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/**
 * `REGISTER_KV_CACHE`: the engine's paged KV, one raw CUDA IPC handle per layer plus the
 * tensor geometry. Validated here against the layout: the server maps exactly what the
 * engine described, or refuses.
 */
export function parseRegisterKvCache(p: Payload): RegisterKvCacheMsg {
  const base = instanceFields(p);
  const layout = parseLayout(p);
  const deviceUuid = str(p, 'device_uuid', 64);
  if (!UUID.test(deviceUuid)) throw badField('device_uuid must be a CUDA device UUID (32 hex digits, dashes optional)');
  const raw = p.layers;
  if (!Array.isArray(raw)) throw badField('layers must be an array of layer maps');
  if (raw.length !== layout.numLayers) {
    throw badField(`layers has ${raw.length} entries for layout.num_layers = ${layout.numLayers}`);
  }
  const planes = layout.kind === 'mla' ? 1 : 2;
  const hidden = layout.kind === 'mla' ? layout.headDim : layout.numHeads * layout.headSize;
  const elements = planes * layout.numBlocks * layout.blockSize * hidden;
  const layers = raw.map((entry: unknown, i: number): CudaLayerMsg => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || entry instanceof Uint8Array) {
      throw badField(`layers[${i}] must be a map`);
    }
    const e = entry as Payload;
    const what = `layers[${i}]`;
    const ipcHandle = bin(e, 'ipc_handle', CUDA_IPC_HANDLE_BYTES);
    const offset = int(e, 'offset', 0);
    const shape = intArray(e, 'shape', MAX_DIM * 64, 8);
    const stride = intArray(e, 'stride', Number.MAX_SAFE_INTEGER, 8);
    const dt = dtype(e, 'dtype');
    if (dt !== layout.dtype) throw badField(`${what}.dtype differs from layout.dtype`);
    if (shape.length === 0 || stride.length !== shape.length) {
      throw badField(`${what}: shape and stride must be non-empty and of equal length`);
    }
    if (shape.reduce((a, b) => a * b, 1) !== elements) {
      throw badField(`${what}.shape holds ${shape.reduce((a, b) => a * b, 1)} elements; the layout needs ${elements}`);
    }
    // The copy kernels address blocks as one contiguous row-major tensor.
    let expect = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (shape[d] !== 1 && stride[d] !== expect) {
        throw badField(`${what} is not contiguous (stride[${d}]); export a contiguous view`);
      }
      expect *= shape[d];
    }
    if (offset % DTYPE_BYTES[dt] !== 0) throw badField(`${what}.offset is not aligned to the dtype`);
    return { ipcHandle, offset, shape, stride, dtype: dt };
  });
  return { ...base, layout, deviceUuid, layers };
}

export interface RegisterEngineDrivenMsg extends InstanceFields {
  /** `num_blocks` is optional: the server stages whole chunks in its own memory. */
  readonly layout: KvLayoutSpec;
}

export function parseRegisterEngineDriven(p: Payload): RegisterEngineDrivenMsg {
  return { ...instanceFields(p), layout: parseLayout(p, 1) };
}

export function parseInstanceId(p: Payload): string {
  return str(p, 'instance_id', 256);
}

export interface LookupMsg {
  readonly requestId: string;
  readonly modelName: string;
  readonly tokens: Uint32Array;
  readonly end: number | undefined;
  readonly worldSize: number | undefined;
  readonly workerId: number | undefined;
  readonly tpSize: number | undefined;
  readonly cacheSalt: string | undefined;
  readonly trace: TraceCarrier | undefined;
}

/** The cache salt is sensitive: validated by the core, never logged. */
function cacheSalt(p: Payload): string | undefined {
  const v = p.cache_salt;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badField('cache_salt must be a string');
  return v;
}

export function parseLookup(p: Payload): LookupMsg {
  return {
    requestId: str(p, 'request_id'),
    modelName: str(p, 'model_name', 256),
    tokens: tokens(p),
    end: optInt(p, 'end'),
    worldSize: optInt(p, 'world_size', 1, 255),
    workerId: optInt(p, 'worker_id', 0, 254),
    tpSize: optInt(p, 'tp_size', 1, 255),
    cacheSalt: cacheSalt(p),
    trace: traceCarrier(p),
  };
}

export interface RangeMsg {
  readonly requestId: string;
  readonly instanceId: string;
  readonly tokens: Uint32Array;
  readonly start: number | undefined;
  readonly end: number | undefined;
  readonly cacheSalt: string | undefined;
  readonly trace: TraceCarrier | undefined;
}

function rangeFields(p: Payload): RangeMsg {
  return {
    requestId: str(p, 'request_id'),
    instanceId: str(p, 'instance_id', 256),
    tokens: tokens(p),
    start: optInt(p, 'start'),
    end: optInt(p, 'end'),
    cacheSalt: cacheSalt(p),
    trace: traceCarrier(p),
  };
}

export interface TransferMsg extends RangeMsg {
  readonly blockIds: readonly number[];
  readonly waitEvent: Uint8Array | undefined;
  readonly skipFirstTokens: number | undefined;
}

/** `STORE` / `RETRIEVE` (CUDA IPC mode): engine block ids plus an optional IPC event to wait on. */
export function parseTransfer(p: Payload): TransferMsg {
  return {
    ...rangeFields(p),
    blockIds: intArray(p, 'block_ids', 0xffffffff),
    waitEvent: optBin(p, 'wait_event', CUDA_IPC_HANDLE_BYTES),
    skipFirstTokens: optInt(p, 'skip_first_tokens'),
  };
}

/** `PREPARE_STORE` / `RETRIEVE_DATA` (engine-driven mode). */
export function parseRange(p: Payload): RangeMsg {
  return rangeFields(p);
}

export interface CommitStoreMsg {
  readonly handle: number;
  readonly data: Uint8Array;
}

export function parseCommitStore(p: Payload): CommitStoreMsg {
  return { handle: int(p, 'handle', 1), data: bin(p, 'data') };
}

export interface RequestIdMsg {
  readonly requestId: string;
  readonly trace: TraceCarrier | undefined;
}

export function parseRequestId(p: Payload): RequestIdMsg {
  return { requestId: str(p, 'request_id'), trace: traceCarrier(p) };
}

export interface FreeLocksMsg {
  readonly requestId: string;
  readonly start: number | undefined;
  readonly end: number | undefined;
}

export function parseFreeLocks(p: Payload): FreeLocksMsg {
  return { requestId: str(p, 'request_id'), start: optInt(p, 'start'), end: optInt(p, 'end') };
}

export function parsePing(p: Payload): string | undefined {
  return optStr(p, 'instance_id', 256);
}
