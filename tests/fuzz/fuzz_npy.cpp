// libFuzzer target: parse_npy on arbitrary bytes.
//
// A FormatError is the expected outcome for bad input. Anything else is a finding: another
// exception escaping, a crash, a sanitizer report, or a valid array that does not survive
// serialize_npy -> parse_npy bit for bit.
#include <sknet/io/npy.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sknet::NamedTensor<double> tensor;
  try {
    (void)sknet::io::parse_npy<float>(data, size, "fuzz");
    tensor = sknet::io::parse_npy<double>(data, size, "fuzz");
  } catch (const sknet::FormatError&) {
    return 0;
  }
  // The file was valid: writing the array back and reading it again must give the same bits.
  const std::vector<unsigned char> bytes =
      sknet::io::detail::serialize_npy<double>(tensor.shape, tensor.values.data(), "round trip");
  const sknet::NamedTensor<double> again = sknet::io::parse_npy<double>(bytes.data(), bytes.size(), "round trip");
  if (again.shape != tensor.shape || again.values.size() != tensor.values.size()) std::abort();
  if (!tensor.values.empty() &&
      std::memcmp(again.values.data(), tensor.values.data(), tensor.values.size() * sizeof(double)) != 0)
    std::abort();
  return 0;
}
