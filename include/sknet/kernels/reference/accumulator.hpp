// sknet reference kernels: the accumulation type (double for float and double data).
#pragma once

#include <type_traits>

namespace sknet {
namespace kernels {
namespace reference {

/// Reference kernels accumulate in at least double precision so they can serve as the oracle
/// for the fast kernels.
template <class Scalar>
using accumulator_t = std::conditional_t<(sizeof(Scalar) > sizeof(double)), Scalar, double>;

}  // namespace reference
}  // namespace kernels
}  // namespace sknet
