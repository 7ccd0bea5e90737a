// sknet: the umbrella header plus the prepared fast path (PreparedSKNet, PreparedSKConv) and its
// runtime-dispatched SIMD kernels. Kept apart from sknet/sknet.hpp because the kernels of every
// instruction set compile in each translation unit that includes them (see sknet/kernels/dispatch.hpp
// for compiling them once with SKNET_IMPLEMENTATION / SKNET_KERNELS_EXTERN or sknet::kernels).
#pragma once

#include "sknet/sknet.hpp"
#include "sknet/kernels/kernel_list.hpp"
#include "sknet/models/prepared_sknet.hpp"
#include "sknet/sk/prepared_sk_conv.hpp"
