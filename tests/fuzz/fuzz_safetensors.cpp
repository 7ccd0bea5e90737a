// libFuzzer target: parse_safetensors + to_state_dict on arbitrary bytes.
//
// A FormatError is the expected outcome for bad input. Anything else is a finding: another
// exception escaping, a crash, a sanitizer report, or a valid file that does not survive
// serialize_safetensors -> parse_safetensors unchanged.
#include <sknet/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sknet::io::SafetensorsFile file;
  try {
    file = sknet::io::parse_safetensors(data, size, "fuzz");
    (void)sknet::io::to_state_dict<float>(file, "fuzz");
    (void)sknet::io::to_state_dict<double>(file, "fuzz");
  } catch (const sknet::FormatError&) {
    return 0;
  }
  // The file was valid: writing it back and reading it again must give the same contents.
  const std::vector<unsigned char> bytes = sknet::io::serialize_safetensors(file);
  const sknet::io::SafetensorsFile again = sknet::io::parse_safetensors(bytes.data(), bytes.size(), "round trip");
  if (again.metadata != file.metadata || again.tensors.size() != file.tensors.size()) std::abort();
  for (const auto& entry : file.tensors) {
    const sknet::io::RawTensor& other = again.tensors.at(entry.first);
    if (other.dtype != entry.second.dtype || other.shape != entry.second.shape || other.bytes != entry.second.bytes)
      std::abort();
  }
  return 0;
}
