// The one symbol of the kernel library that no family owns: its ABI version, which arlif/ops/cpu_build.py
// defines and passes to the compiler, and checks again when it loads the library.
#ifndef ARLIF_ABI_VERSION
#error "build with -DARLIF_ABI_VERSION=<n> (arlif/ops/cpu_build.py passes it)"
#endif

extern "C" int arlif_kernels_abi_version() { return ARLIF_ABI_VERSION; }
