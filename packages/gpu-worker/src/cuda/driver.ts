import { createRequire } from 'node:module';
import type * as KoffiModule from 'koffi';
import { CudaError, CudaUnavailableError } from './cuda-error.js';

type Koffi = typeof KoffiModule;
// biome-ignore lint/suspicious/noExplicitAny: koffi returns untyped native functions; every use goes through the typed CudaDriver below
type NativeFn = (...args: any[]) => any;

/** CUresult codes the binding treats specially. */
export const CUDA_SUCCESS = 0;
export const CUDA_ERROR_NOT_READY = 600;

export const CU_EVENT_DEFAULT = 0;
export const CU_EVENT_DISABLE_TIMING = 0x2;
export const CU_EVENT_INTERPROCESS = 0x4;
export const CU_STREAM_NON_BLOCKING = 0x1;
export const CU_MEMHOSTREGISTER_PORTABLE = 0x1;
export const CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS = 0x1;
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

/** Opaque driver handles (CUcontext, CUstream, CUevent, CUmodule, CUfunction). */
export type CuHandle = unknown;
/** CUdeviceptr: a 64-bit device address, as a bigint. */
export type DevicePtr = bigint;

/**
 * The slice of the CUDA driver API kvmp uses, bound with koffi to libcuda.so.1. Calls return
 * results directly and throw {@link CudaError} on failure, except `eventQuery` (NOT_READY is a
 * normal answer). Host pointers are typed arrays: koffi passes a pointer to their backing store,
 * which for a SharedArrayBuffer never moves, so it stays valid for async copies and pinning.
 */
export interface CudaDriver {
  readonly driverVersion: number;
  deviceCount(): number;
  deviceGet(ordinal: number): number;
  deviceName(device: number): string;
  deviceComputeCapability(device: number): [number, number];
  /** nvidia-smi form: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  deviceUuid(device: number): string;
  primaryCtxRetain(device: number): CuHandle;
  primaryCtxRelease(device: number): void;
  ctxSetCurrent(ctx: CuHandle): void;
  streamCreate(flags: number): CuHandle;
  streamDestroy(stream: CuHandle): void;
  streamSynchronize(stream: CuHandle): void;
  streamWaitEvent(stream: CuHandle, event: CuHandle): void;
  eventCreate(flags: number): CuHandle;
  eventDestroy(event: CuHandle): void;
  eventRecord(event: CuHandle, stream: CuHandle): void;
  /** true when complete, false when not ready; throws on errors. */
  eventQuery(event: CuHandle): boolean;
  eventSynchronize(event: CuHandle): void;
  eventElapsedMs(start: CuHandle, end: CuHandle): number;
  ipcGetEventHandle(event: CuHandle): Uint8Array;
  ipcOpenEventHandle(handle: Uint8Array): CuHandle;
  ipcOpenMemHandle(handle: Uint8Array): DevicePtr;
  /** Exports an allocation (engine side; used by scripts/gpu-check's engine process). */
  ipcGetMemHandle(ptr: DevicePtr): Uint8Array;
  ipcCloseMemHandle(ptr: DevicePtr): void;
  /** Size of the allocation containing `ptr` (and its base). */
  memGetAddressRange(ptr: DevicePtr): { base: DevicePtr; bytes: number };
  memAlloc(bytes: number): DevicePtr;
  memFree(ptr: DevicePtr): void;
  memHostRegister(host: Uint8Array, flags: number): void;
  memHostUnregister(host: Uint8Array): void;
  memcpyHtoDAsync(dst: DevicePtr, src: Uint8Array, stream: CuHandle): void;
  memcpyDtoHAsync(dst: Uint8Array, src: DevicePtr, stream: CuHandle): void;
  memcpyHtoD(dst: DevicePtr, src: Uint8Array): void;
  memcpyDtoH(dst: Uint8Array, src: DevicePtr): void;
  memsetD8Async(dst: DevicePtr, value: number, bytes: number, stream: CuHandle): void;
  moduleLoadData(image: Uint8Array): CuHandle;
  moduleUnload(module: CuHandle): void;
  moduleGetFunction(module: CuHandle, name: string): CuHandle;
  /** Launches with one by-value argument buffer (CU_LAUNCH_PARAM_BUFFER_POINTER). */
  launchKernel(
    fn: CuHandle,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    stream: CuHandle,
    args: Uint8Array,
  ): void;
}

let cached: CudaDriver | CudaUnavailableError | undefined;

/**
 * Loads koffi and libcuda.so.1 on first use (nothing CUDA-related is loaded before) and calls
 * cuInit. Throws {@link CudaUnavailableError} ("no CUDA driver found: …") when the library is
 * missing or cuInit fails; the outcome is cached for the thread. `KVMP_LIBCUDA` overrides the
 * library path (a driver outside the loader path, or the test stand-in).
 */
export function loadCudaDriver(libraryPath = process.env.KVMP_LIBCUDA || 'libcuda.so.1'): CudaDriver {
  if (cached === undefined) {
    try {
      cached = bind(libraryPath);
    } catch (error) {
      cached = error instanceof CudaUnavailableError ? error : new CudaUnavailableError((error as Error).message);
    }
  }
  if (cached instanceof Error) throw cached;
  return cached;
}

function bind(libraryPath: string): CudaDriver {
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  let lib: KoffiModule.LibraryHandle;
  try {
    lib = koffi.load(libraryPath);
  } catch (error) {
    throw new CudaUnavailableError(`cannot load ${libraryPath} (${(error as Error).message})`);
  }
  // Some entry points gained _v2 variants; the headers #define the plain name to them. Bind the
  // newest the driver exports so old and new drivers both work.
  const fn = (names: string[], signature: (name: string) => string): NativeFn => {
    let last: unknown;
    for (const name of names) {
      try {
        return lib.func(signature(name)) as NativeFn;
      } catch (error) {
        last = error;
      }
    }
    throw new CudaUnavailableError(`${libraryPath} lacks ${names.join('/')} (${(last as Error)?.message})`);
  };
  koffi.opaque('CUctx_st');
  koffi.opaque('CUstream_st');
  koffi.opaque('CUevent_st');
  koffi.opaque('CUmod_st');
  koffi.opaque('CUfunc_st');
  // CUipcEventHandle / CUipcMemHandle are 64-byte structs passed by value.
  koffi.struct('kvmp_CUipcHandle', { reserved: koffi.array('uint8_t', 64) });

  const cuInit = fn(['cuInit'], (n) => `int ${n}(unsigned int flags)`);
  const cuDriverGetVersion = fn(['cuDriverGetVersion'], (n) => `int ${n}(_Out_ int *version)`);
  const cuGetErrorString = fn(['cuGetErrorString'], (n) => `int ${n}(int error, _Out_ const char **str)`);
  const cuGetErrorName = fn(['cuGetErrorName'], (n) => `int ${n}(int error, _Out_ const char **str)`);
  const cuDeviceGetCount = fn(['cuDeviceGetCount'], (n) => `int ${n}(_Out_ int *count)`);
  const cuDeviceGet = fn(['cuDeviceGet'], (n) => `int ${n}(_Out_ int *device, int ordinal)`);
  const cuDeviceGetName = fn(['cuDeviceGetName'], (n) => `int ${n}(_Out_ uint8_t *name, int len, int dev)`);
  const cuDeviceGetAttribute = fn(['cuDeviceGetAttribute'], (n) => `int ${n}(_Out_ int *value, int attrib, int dev)`);
  const cuDeviceGetUuid = fn(
    ['cuDeviceGetUuid_v2', 'cuDeviceGetUuid'],
    (n) => `int ${n}(_Out_ uint8_t *uuid, int dev)`,
  );
  const cuDevicePrimaryCtxRetain = fn(['cuDevicePrimaryCtxRetain'], (n) => `int ${n}(_Out_ CUctx_st **ctx, int dev)`);
  const cuDevicePrimaryCtxRelease = fn(
    ['cuDevicePrimaryCtxRelease_v2', 'cuDevicePrimaryCtxRelease'],
    (n) => `int ${n}(int dev)`,
  );
  const cuCtxSetCurrent = fn(['cuCtxSetCurrent'], (n) => `int ${n}(CUctx_st *ctx)`);
  const cuStreamCreate = fn(['cuStreamCreate'], (n) => `int ${n}(_Out_ CUstream_st **stream, unsigned int flags)`);
  const cuStreamDestroy = fn(['cuStreamDestroy_v2', 'cuStreamDestroy'], (n) => `int ${n}(CUstream_st *stream)`);
  const cuStreamSynchronize = fn(['cuStreamSynchronize'], (n) => `int ${n}(CUstream_st *stream)`);
  const cuStreamWaitEvent = fn(
    ['cuStreamWaitEvent'],
    (n) => `int ${n}(CUstream_st *stream, CUevent_st *event, unsigned int flags)`,
  );
  const cuEventCreate = fn(['cuEventCreate'], (n) => `int ${n}(_Out_ CUevent_st **event, unsigned int flags)`);
  const cuEventDestroy = fn(['cuEventDestroy_v2', 'cuEventDestroy'], (n) => `int ${n}(CUevent_st *event)`);
  const cuEventRecord = fn(['cuEventRecord'], (n) => `int ${n}(CUevent_st *event, CUstream_st *stream)`);
  const cuEventQuery = fn(['cuEventQuery'], (n) => `int ${n}(CUevent_st *event)`);
  const cuEventSynchronize = fn(['cuEventSynchronize'], (n) => `int ${n}(CUevent_st *event)`);
  const cuEventElapsedTime = fn(
    ['cuEventElapsedTime_v2', 'cuEventElapsedTime'],
    (n) => `int ${n}(_Out_ float *ms, CUevent_st *start, CUevent_st *end)`,
  );
  const cuIpcGetEventHandle = fn(['cuIpcGetEventHandle'], (n) => `int ${n}(_Out_ uint8_t *handle, CUevent_st *event)`);
  const cuIpcOpenEventHandle = fn(
    ['cuIpcOpenEventHandle'],
    (n) => `int ${n}(_Out_ CUevent_st **event, kvmp_CUipcHandle handle)`,
  );
  const cuIpcOpenMemHandle = fn(
    ['cuIpcOpenMemHandle_v2', 'cuIpcOpenMemHandle'],
    (n) => `int ${n}(_Out_ uint64_t *ptr, kvmp_CUipcHandle handle, unsigned int flags)`,
  );
  const cuIpcGetMemHandle = fn(['cuIpcGetMemHandle'], (n) => `int ${n}(_Out_ uint8_t *handle, uint64_t ptr)`);
  const cuIpcCloseMemHandle = fn(['cuIpcCloseMemHandle'], (n) => `int ${n}(uint64_t ptr)`);
  const cuMemGetAddressRange = fn(
    ['cuMemGetAddressRange_v2'],
    (n) => `int ${n}(_Out_ uint64_t *base, _Out_ size_t *bytes, uint64_t ptr)`,
  );
  const cuMemAlloc = fn(['cuMemAlloc_v2'], (n) => `int ${n}(_Out_ uint64_t *ptr, size_t bytes)`);
  const cuMemFree = fn(['cuMemFree_v2'], (n) => `int ${n}(uint64_t ptr)`);
  const cuMemHostRegister = fn(
    ['cuMemHostRegister_v2', 'cuMemHostRegister'],
    (n) => `int ${n}(void *p, size_t bytes, unsigned int flags)`,
  );
  const cuMemHostUnregister = fn(['cuMemHostUnregister'], (n) => `int ${n}(void *p)`);
  const cuMemcpyHtoDAsync = fn(
    ['cuMemcpyHtoDAsync_v2'],
    (n) => `int ${n}(uint64_t dst, const void *src, size_t bytes, CUstream_st *stream)`,
  );
  const cuMemcpyDtoHAsync = fn(
    ['cuMemcpyDtoHAsync_v2'],
    (n) => `int ${n}(void *dst, uint64_t src, size_t bytes, CUstream_st *stream)`,
  );
  const cuMemcpyHtoD = fn(['cuMemcpyHtoD_v2'], (n) => `int ${n}(uint64_t dst, const void *src, size_t bytes)`);
  const cuMemcpyDtoH = fn(['cuMemcpyDtoH_v2'], (n) => `int ${n}(void *dst, uint64_t src, size_t bytes)`);
  const cuMemsetD8Async = fn(
    ['cuMemsetD8Async'],
    (n) => `int ${n}(uint64_t dst, uint8_t value, size_t bytes, CUstream_st *stream)`,
  );
  const cuModuleLoadData = fn(['cuModuleLoadData'], (n) => `int ${n}(_Out_ CUmod_st **module, const void *image)`);
  const cuModuleUnload = fn(['cuModuleUnload'], (n) => `int ${n}(CUmod_st *module)`);
  const cuModuleGetFunction = fn(
    ['cuModuleGetFunction'],
    (n) => `int ${n}(_Out_ CUfunc_st **fn, CUmod_st *module, const char *name)`,
  );
  const cuLaunchKernel = fn(
    ['cuLaunchKernel'],
    (n) =>
      `int ${n}(CUfunc_st *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, CUstream_st *stream, void **params, void **extra)`,
  );

  const describeError = (code: number): string => {
    const name: (string | null)[] = [null];
    const text: (string | null)[] = [null];
    cuGetErrorName(code, name);
    cuGetErrorString(code, text);
    return `${name[0] ?? 'CUDA_ERROR_UNKNOWN'}: ${text[0] ?? 'unrecognised error code'}`;
  };
  const check = (call: string, code: number): void => {
    if (code !== CUDA_SUCCESS) throw new CudaError(call, code, describeError(code));
  };
  const out = <T>(call: string, invoke: (slot: T[]) => number, initial: T): T => {
    const slot: T[] = [initial];
    check(call, invoke(slot));
    return slot[0];
  };

  const init = cuInit(0) as number;
  if (init !== CUDA_SUCCESS) throw new CudaUnavailableError(`cuInit failed: ${describeError(init)}`);
  const driverVersion = out<number>('cuDriverGetVersion', (s) => cuDriverGetVersion(s), 0);

  // The launch "extra" array: {BUFFER_POINTER, &buf, BUFFER_SIZE, &size, END}, in native memory so
  // the pointers inside it stay valid during the call. Re-filled per launch (single-threaded use).
  const argsCapacity = 8192;
  const argsBuf = koffi.alloc('uint8_t', argsCapacity);
  const argsView = new Uint8Array(koffi.view(argsBuf, argsCapacity));
  const sizeSlot = koffi.alloc('uint64_t', 1);
  const sizeView = new BigUint64Array(koffi.view(sizeSlot, 8));
  const extra = koffi.alloc('void *', 5);
  const extraView = new BigUint64Array(koffi.view(extra, 40));
  extraView[0] = 1n; // CU_LAUNCH_PARAM_BUFFER_POINTER
  extraView[1] = koffi.address(argsBuf);
  extraView[2] = 2n; // CU_LAUNCH_PARAM_BUFFER_SIZE
  extraView[3] = koffi.address(sizeSlot);
  extraView[4] = 0n; // CU_LAUNCH_PARAM_END

  const ipc = (handle: Uint8Array): { reserved: Uint8Array } => {
    if (!(handle instanceof Uint8Array) || handle.byteLength !== 64)
      throw new TypeError('CUDA IPC handles are 64 bytes');
    return { reserved: handle };
  };

  return {
    driverVersion,
    deviceCount: () => out<number>('cuDeviceGetCount', (s) => cuDeviceGetCount(s), 0),
    deviceGet: (ordinal) => out<number>('cuDeviceGet', (s) => cuDeviceGet(s, ordinal), 0),
    deviceName: (device) => {
      const buf = new Uint8Array(256);
      check('cuDeviceGetName', cuDeviceGetName(buf, buf.length, device));
      const end = buf.indexOf(0);
      return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
    },
    deviceComputeCapability: (device) => [
      out<number>(
        'cuDeviceGetAttribute',
        (s) => cuDeviceGetAttribute(s, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
        0,
      ),
      out<number>(
        'cuDeviceGetAttribute',
        (s) => cuDeviceGetAttribute(s, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
        0,
      ),
    ],
    deviceUuid: (device) => {
      const raw = new Uint8Array(16);
      check('cuDeviceGetUuid', cuDeviceGetUuid(raw, device));
      const hex = Buffer.from(raw).toString('hex');
      return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
    primaryCtxRetain: (device) =>
      out<CuHandle>('cuDevicePrimaryCtxRetain', (s) => cuDevicePrimaryCtxRetain(s, device), null),
    primaryCtxRelease: (device) => check('cuDevicePrimaryCtxRelease', cuDevicePrimaryCtxRelease(device)),
    ctxSetCurrent: (ctx) => check('cuCtxSetCurrent', cuCtxSetCurrent(ctx)),
    streamCreate: (flags) => out<CuHandle>('cuStreamCreate', (s) => cuStreamCreate(s, flags), null),
    streamDestroy: (stream) => check('cuStreamDestroy', cuStreamDestroy(stream)),
    streamSynchronize: (stream) => check('cuStreamSynchronize', cuStreamSynchronize(stream)),
    streamWaitEvent: (stream, event) => check('cuStreamWaitEvent', cuStreamWaitEvent(stream, event, 0)),
    eventCreate: (flags) => out<CuHandle>('cuEventCreate', (s) => cuEventCreate(s, flags), null),
    eventDestroy: (event) => check('cuEventDestroy', cuEventDestroy(event)),
    eventRecord: (event, stream) => check('cuEventRecord', cuEventRecord(event, stream)),
    eventQuery: (event) => {
      const code = cuEventQuery(event) as number;
      if (code === CUDA_ERROR_NOT_READY) return false;
      check('cuEventQuery', code);
      return true;
    },
    eventSynchronize: (event) => check('cuEventSynchronize', cuEventSynchronize(event)),
    eventElapsedMs: (start, end) => out<number>('cuEventElapsedTime', (s) => cuEventElapsedTime(s, start, end), 0),
    ipcGetEventHandle: (event) => {
      const handle = new Uint8Array(64);
      check('cuIpcGetEventHandle', cuIpcGetEventHandle(handle, event));
      return handle;
    },
    ipcOpenEventHandle: (handle) =>
      out<CuHandle>('cuIpcOpenEventHandle', (s) => cuIpcOpenEventHandle(s, ipc(handle)), null),
    ipcOpenMemHandle: (handle) =>
      BigInt(
        out<bigint | number>(
          'cuIpcOpenMemHandle',
          (s) => cuIpcOpenMemHandle(s, ipc(handle), CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS),
          0,
        ),
      ),
    ipcGetMemHandle: (ptr) => {
      const handle = new Uint8Array(64);
      check('cuIpcGetMemHandle', cuIpcGetMemHandle(handle, ptr));
      return handle;
    },
    ipcCloseMemHandle: (ptr) => check('cuIpcCloseMemHandle', cuIpcCloseMemHandle(ptr)),
    memGetAddressRange: (ptr) => {
      const base: (number | bigint)[] = [0];
      const bytes: (number | bigint)[] = [0];
      check('cuMemGetAddressRange', cuMemGetAddressRange(base, bytes, ptr));
      return { base: BigInt(base[0]), bytes: Number(bytes[0]) };
    },
    memAlloc: (bytes) => BigInt(out<bigint | number>('cuMemAlloc', (s) => cuMemAlloc(s, bytes), 0)),
    memFree: (ptr) => check('cuMemFree', cuMemFree(ptr)),
    memHostRegister: (host, flags) => check('cuMemHostRegister', cuMemHostRegister(host, host.byteLength, flags)),
    memHostUnregister: (host) => check('cuMemHostUnregister', cuMemHostUnregister(host)),
    memcpyHtoDAsync: (dst, src, stream) =>
      check('cuMemcpyHtoDAsync', cuMemcpyHtoDAsync(dst, src, src.byteLength, stream)),
    memcpyDtoHAsync: (dst, src, stream) =>
      check('cuMemcpyDtoHAsync', cuMemcpyDtoHAsync(dst, src, dst.byteLength, stream)),
    memcpyHtoD: (dst, src) => check('cuMemcpyHtoD', cuMemcpyHtoD(dst, src, src.byteLength)),
    memcpyDtoH: (dst, src) => check('cuMemcpyDtoH', cuMemcpyDtoH(dst, src, dst.byteLength)),
    memsetD8Async: (dst, value, bytes, stream) => check('cuMemsetD8Async', cuMemsetD8Async(dst, value, bytes, stream)),
    moduleLoadData: (image) => out<CuHandle>('cuModuleLoadData', (s) => cuModuleLoadData(s, image), null),
    moduleUnload: (module) => check('cuModuleUnload', cuModuleUnload(module)),
    moduleGetFunction: (module, name) =>
      out<CuHandle>('cuModuleGetFunction', (s) => cuModuleGetFunction(s, module, name), null),
    launchKernel: (f, grid, block, stream, args) => {
      if (args.byteLength > argsCapacity)
        throw new RangeError(`kernel arguments of ${args.byteLength} bytes exceed ${argsCapacity}`);
      argsView.set(args);
      sizeView[0] = BigInt(args.byteLength);
      check(
        'cuLaunchKernel',
        cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, stream, null, extra),
      );
    },
  };
}
