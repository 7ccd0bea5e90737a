// sknet::kernels: the kernel bodies of every instruction set compiled once, for programs that link the
// CMake target sknet::kernels (which defines SKNET_KERNELS_EXTERN for them) instead of compiling the
// kernels in each translation unit. See include/sknet/kernels/dispatch.hpp.
#define SKNET_IMPLEMENTATION
#include <sknet/kernels/kernel_list.hpp>
