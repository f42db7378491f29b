// A stand-in libcuda.so.1 for tests on machines without a GPU. "Device" memory is host memory,
// streams run synchronously, and cuLaunchKernel runs the real kernels/kv_copy.cu source compiled
// for the host (shimmed CUDA built-ins, one CTA and thread at a time). It exercises the koffi
// binding's signatures (incl. 64-byte structs by value), the cuda backend's enqueue/complete
// logic, the kernel argument packing and the kernels' index math. It says nothing about real
// GPU behaviour (async overlap, DMA, IPC across processes).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <map>
#include <sys/mman.h>
#include <unistd.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __grid_constant__
struct kvmp_dim3 { unsigned x, y, z; };
static kvmp_dim3 blockIdx, threadIdx, blockDim;
struct uint4 { unsigned x, y, z, w; };
#include "../../kernels/kv_copy.cu"

typedef int CUresult;
typedef void (*Kernel)(const KvmpCopyArgs);
struct FakeEvent { double ms; int queries; unsigned flags; };
struct Handle64 { unsigned char bytes[64]; };

static double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}
static int g_launches = 0;
static int g_registered = 0;
static int g_opened_events = 0;

extern "C" {
CUresult cuInit(unsigned) { return 0; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return 0; }
CUresult cuGetErrorName(int e, const char** s) { *s = e == 600 ? "CUDA_ERROR_NOT_READY" : "CUDA_ERROR_FAKE"; return 0; }
CUresult cuGetErrorString(int, const char** s) { *s = "fake libcuda error"; return 0; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char* name, int len, int) { snprintf(name, len, "kvmp fake GPU"); return 0; }
CUresult cuDeviceGetAttribute(int* v, int attr, int) { *v = attr == 75 ? 9 : 0; return 0; }
CUresult cuDeviceGetUuid_v2(unsigned char* uuid, int) { for (int i = 0; i < 16; i++) uuid[i] = (unsigned char)(0xa0 + i); return 0; }
CUresult cuDevicePrimaryCtxRetain(void** ctx, int) { *ctx = (void*)0x1; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int) { return 0; }
CUresult cuCtxSetCurrent(void*) { return 0; }
CUresult cuStreamCreate(void** s, unsigned) { *s = malloc(8); return 0; }
CUresult cuStreamDestroy_v2(void* s) { free(s); return 0; }
CUresult cuStreamSynchronize(void*) { return 0; }
CUresult cuStreamWaitEvent(void*, void* e, unsigned) { return e == nullptr ? 400 : 0; }
CUresult cuEventCreate(void** e, unsigned flags) { *e = new FakeEvent{0, 0, flags}; return 0; }
CUresult cuEventDestroy_v2(void* e) { delete (FakeEvent*)e; return 0; }
CUresult cuEventRecord(void* e, void*) { ((FakeEvent*)e)->ms = now_ms(); return 0; }
// The first query of each event says NOT_READY, so the completion poller's retry path runs.
CUresult cuEventQuery(void* e) { return ((FakeEvent*)e)->queries++ == 0 ? 600 : 0; }
CUresult cuEventSynchronize(void*) { return 0; }
CUresult cuEventElapsedTime(float* ms, void* a, void* b) {
  if ((((FakeEvent*)a)->flags | ((FakeEvent*)b)->flags) & 0x2) return 400;
  *ms = (float)(((FakeEvent*)b)->ms - ((FakeEvent*)a)->ms);
  return 0;
}
CUresult cuIpcGetEventHandle(Handle64* h, void* e) {
  if (!(((FakeEvent*)e)->flags & 0x4)) return 1;
  memset(h, 0, 64); memcpy(h->bytes, "kvmpevt", 7); memcpy(h->bytes + 8, &e, sizeof e); return 0;
}
// "Opening" an event handle gives a new event (the engine's event is always complete here).
CUresult cuIpcOpenEventHandle(void** e, Handle64 h) {
  if (memcmp(h.bytes, "kvmpevt", 7) != 0) return 1;
  g_opened_events++;
  *e = new FakeEvent{now_ms(), 1, 0x6}; return 0;
}
// "Device" allocations are POSIX shared memory, so a memory handle ("kvmpmem", size, shm name)
// can be opened by another process, as CUDA IPC handles are (scripts/gpu-check's engine process).
struct Alloc { std::string name; size_t size; bool owner; };
static std::map<unsigned long long, Alloc> g_allocs;
static int g_alloc_seq = 0;
static void unlink_all() {
  for (auto& [p, a] : g_allocs) if (a.owner) shm_unlink(a.name.c_str());
}
static void* map_shm(const char* name, size_t size, bool create) {
  int fd = shm_open(name, create ? O_CREAT | O_EXCL | O_RDWR : O_RDWR, 0600);
  if (fd < 0) return nullptr;
  if (create && ftruncate(fd, (off_t)size) != 0) { close(fd); return nullptr; }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return p == MAP_FAILED ? nullptr : p;
}
CUresult cuMemAlloc_v2(unsigned long long* p, size_t n) {
  if (g_alloc_seq == 0) atexit(unlink_all);
  char name[48];
  snprintf(name, sizeof name, "/kvmp-fake-cuda-%d-%d", (int)getpid(), ++g_alloc_seq);
  void* mem = map_shm(name, n, true);
  if (mem == nullptr) return 2;
  *p = (unsigned long long)mem;
  g_allocs[*p] = {name, n, true};
  return 0;
}
CUresult cuMemFree_v2(unsigned long long p) {
  auto it = g_allocs.find(p);
  if (it == g_allocs.end()) return 1;
  munmap((void*)p, it->second.size);
  if (it->second.owner) shm_unlink(it->second.name.c_str());
  g_allocs.erase(it);
  return 0;
}
CUresult cuMemGetAddressRange_v2(unsigned long long* base, size_t* size, unsigned long long p) {
  for (auto& [b, a] : g_allocs) {
    if (p >= b && p < b + a.size) { *base = b; *size = a.size; return 0; }
  }
  return 1;
}
CUresult cuIpcGetMemHandle(Handle64* h, unsigned long long p) {
  auto it = g_allocs.find(p);
  if (it == g_allocs.end() || !it->second.owner) return 1;
  memset(h, 0, 64);
  memcpy(h->bytes, "kvmpmem", 7);
  memcpy(h->bytes + 8, &it->second.size, 8);
  snprintf((char*)h->bytes + 16, 48, "%s", it->second.name.c_str());
  return 0;
}
CUresult cuIpcOpenMemHandle_v2(unsigned long long* p, Handle64 h, unsigned) {
  if (memcmp(h.bytes, "kvmpmem", 7) != 0) return 1;
  size_t size;
  memcpy(&size, h.bytes + 8, 8);
  char name[49] = {0};
  memcpy(name, h.bytes + 16, 48);
  void* mem = map_shm(name, size, false);
  if (mem == nullptr) return 1;
  *p = (unsigned long long)mem;
  g_allocs[*p] = {name, size, false};
  return 0;
}
CUresult cuIpcCloseMemHandle(unsigned long long p) {
  auto it = g_allocs.find(p);
  if (it == g_allocs.end() || it->second.owner) return 1;
  munmap((void*)p, it->second.size);
  g_allocs.erase(it);
  return 0;
}
CUresult cuMemHostRegister_v2(void* p, size_t n, unsigned) { if (!p || !n) return 1; g_registered++; return 0; }
CUresult cuMemHostUnregister(void*) { g_registered--; return 0; }
CUresult cuMemcpyHtoDAsync_v2(unsigned long long d, const void* s, size_t n, void*) { memcpy((void*)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, unsigned long long s, size_t n, void*) { memcpy(d, (void*)s, n); return 0; }
CUresult cuMemcpyHtoD_v2(unsigned long long d, const void* s, size_t n) { memcpy((void*)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void* d, unsigned long long s, size_t n) { memcpy(d, (void*)s, n); return 0; }
CUresult cuMemsetD8Async(unsigned long long d, unsigned char v, size_t n, void*) { memset((void*)d, v, n); return 0; }
CUresult cuModuleLoadData(void** m, const void* image) {
  const char* ptx = (const char*)image;
  if (strstr(ptx, ".entry kvmp_gather_u128") == nullptr || strstr(ptx, ".version") == nullptr) return 218;
  *m = (void*)0x2; return 0;
}
CUresult cuModuleUnload(void*) { return 0; }
CUresult cuModuleGetFunction(void** f, void*, const char* name) {
  std::string n(name);
  if (n == "kvmp_gather_u128") *f = (void*)&kvmp_gather_u128;
  else if (n == "kvmp_scatter_u128") *f = (void*)&kvmp_scatter_u128;
  else if (n == "kvmp_gather_u32") *f = (void*)&kvmp_gather_u32;
  else if (n == "kvmp_scatter_u32") *f = (void*)&kvmp_scatter_u32;
  else if (n == "kvmp_gather_u8") *f = (void*)&kvmp_gather_u8;
  else if (n == "kvmp_scatter_u8") *f = (void*)&kvmp_scatter_u8;
  else return 500;
  return 0;
}
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void*, void** params, void** extra) {
  if (getenv("KVMP_FAKE_DEBUG")) fprintf(stderr, "launch params=%p extra=%p [%p %p %p %p %p] size=%zu grid=%u,%u,%u block=%u\n", (void*)params, (void*)extra, extra ? extra[0] : 0, extra ? extra[1] : 0, extra ? extra[2] : 0, extra ? extra[3] : 0, extra ? extra[4] : 0, extra ? *(size_t*)extra[3] : 0, gx, gy, gz, bx);
  if (params != nullptr || extra == nullptr || shmem != 0 || by != 1 || bz != 1) return 1;
  if (extra[0] != (void*)1 || extra[2] != (void*)2 || extra[4] != nullptr) return 1;
  if (*(size_t*)extra[3] != sizeof(KvmpCopyArgs)) return 1;
  const KvmpCopyArgs* args = (const KvmpCopyArgs*)extra[1];
  if (args->num_layers != (int)gy) return 1;
  g_launches++;
  blockDim = {bx, by, bz};
  for (blockIdx.z = 0; blockIdx.z < gz; blockIdx.z++)
    for (blockIdx.y = 0; blockIdx.y < gy; blockIdx.y++)
      for (blockIdx.x = 0; blockIdx.x < gx; blockIdx.x++)
        for (threadIdx.x = 0; threadIdx.x < bx; threadIdx.x++) ((Kernel)f)(*args);
  return 0;
}
// Test hooks (not CUDA API).
int kvmp_fake_launches() { return g_launches; }
int kvmp_fake_registered() { return g_registered; }
int kvmp_fake_opened_events() { return g_opened_events; }
}
