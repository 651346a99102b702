// The symbols of the kernel library that no family owns: its ABI version, which arlif/ops/cpu_build.py
// defines and passes to the compiler, and checks again when it loads the library; and the size above which a
// kernel call writes its outputs with non-temporal stores (cpu_common.h, stream_outputs), which cpu_build.py
// sets when it loads the library (from the cache sizes Linux reports) and the user can change.
#ifndef ARLIF_ABI_VERSION
#error "build with -DARLIF_ABI_VERSION=<n> (arlif/ops/cpu_build.py passes it)"
#endif

#include <atomic>
#include <cstdint>
#include <limits>

extern "C" int arlif_kernels_abi_version() { return ARLIF_ABI_VERSION; }

namespace {
std::atomic<int64_t> streaming_threshold{std::numeric_limits<int64_t>::max()};  // never, until set
}  // namespace

extern "C" int64_t arlif_streaming_threshold() { return streaming_threshold.load(std::memory_order_relaxed); }

// bytes >= 0: stream the outputs of calls larger than that (0: always)
extern "C" void arlif_set_streaming_threshold(int64_t bytes) {
    streaming_threshold.store(bytes, std::memory_order_relaxed);
}
