// sknet: the umbrella header. Selective Kernel convolutions and networks for CPU inference.
#pragma once

#include "sknet/config.hpp"
#include "sknet/error.hpp"
#include "sknet/init.hpp"
#include "sknet/ops/activation.hpp"
#include "sknet/ops/batch_norm.hpp"
#include "sknet/ops/conv2d.hpp"
#include "sknet/ops/linear.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/parameters.hpp"
#include "sknet/sk/fuse.hpp"
#include "sknet/sk/select.hpp"
#include "sknet/sk/sk_conv.hpp"
#include "sknet/sk/split.hpp"
#include "sknet/state_dict.hpp"
#include "sknet/tensor.hpp"
