// sknet/io/safetensors.hpp: the malformed-file corpus, valid files with known values, F16/BF16
// conversion, and save -> load round trips.
#include <catch2/catch.hpp>

#include <sknet/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace sknet;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kData = SKNET_TEST_DATA_DIR;

nlohmann::json expected_messages() {
  std::ifstream in(kData + "/malformed/expected.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::uint32_t float_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

std::uint64_t double_bits(double d) {
  std::uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

/// i * 0.5 - 3 for i < n: the values tools/gen_malformed.py writes.
std::vector<double> formula(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * 0.5 - 3;
  return v;
}

template <class Scalar>
void check_formula(const NamedTensor<Scalar>& t, const std::vector<Index>& shape) {
  CHECK(t.shape == shape);
  const std::vector<double> expected = formula(t.values.size());
  for (std::size_t i = 0; i < t.values.size(); ++i) CHECK(t.values[i] == static_cast<Scalar>(expected[i]));
}

/// Independent binary16 decoder (arithmetic, not bit manipulation) used as an oracle.
double half_oracle(std::uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  if (exponent == 0) return sign * std::ldexp(static_cast<double>(mantissa), -24);
  if (exponent == 31) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  return sign * std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "sknet_test_safetensors";
  fs::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("every malformed safetensors file is a FormatError naming the file and the rule", "[io][safetensors]") {
  const nlohmann::json expected = expected_messages();
  const fs::path dir = fs::path(kData) / "malformed" / "safetensors";
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    seen.insert(name);
    INFO("file: " << name);
    REQUIRE(expected.contains(name));
    const std::string substring = expected[name].get<std::string>();
    std::string message;
    try {
      io::read_safetensors(entry.path().string());
    } catch (const FormatError& e) {
      message = e.what();
    }
    INFO("message: " << message);
    CHECK_THAT(message, Contains(substring) && Contains(name));
    // The streaming loader validates through the same rules and says the same thing.
    std::string streamed;
    try {
      io::load_safetensors<float>(entry.path().string());
    } catch (const FormatError& e) {
      streamed = e.what();
    }
    CHECK(streamed == message);
  }
  std::size_t listed = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    if (fs::path(it.key()).extension() != ".safetensors") continue;
    ++listed;
    CHECK(seen.count(it.key()) == 1);
  }
  CHECK(listed == seen.size());
  CHECK(seen.size() >= 30);
}

TEST_CASE("valid safetensors files load with exact values", "[io][safetensors]") {
  const std::string dir = kData + "/valid_io/";
  SECTION("F32 and F64") {
    StateDict<float> f = io::load_safetensors<float>(dir + "f32.safetensors");
    REQUIRE(f.size() == 1);
    check_formula(f.at("w"), {2, 3});
    StateDict<double> d = io::load_safetensors<double>(dir + "f64.safetensors");
    check_formula(d.at("w"), {4});
    const io::SafetensorsFile raw = io::read_safetensors(dir + "f64.safetensors");
    CHECK(raw.tensors.at("w").dtype == io::DType::F64);
    CHECK(raw.tensors.at("w").bytes.size() == 32);
  }
  SECTION("F16: values and special bit patterns") {
    StateDict<float> f = io::load_safetensors<float>(dir + "f16.safetensors");
    check_formula(f.at("values"), {3, 4});
    const std::vector<float>& s = f.at("special").values;
    REQUIRE(s.size() == 12);
    CHECK(float_bits(s[0]) == 0x00000000u);   // +0
    CHECK(float_bits(s[1]) == 0x80000000u);   // -0
    CHECK(s[2] == std::ldexp(1.0f, -24));     // smallest subnormal
    CHECK(s[3] == std::ldexp(1023.0f, -24));  // largest subnormal
    CHECK(s[4] == std::ldexp(1.0f, -14));     // smallest normal
    CHECK(s[5] == 1.0f);
    CHECK(s[6] == -2.0f);
    CHECK(s[7] == 65504.0f);  // largest half
    CHECK(s[8] == std::numeric_limits<float>::infinity());
    CHECK(s[9] == -std::numeric_limits<float>::infinity());
    CHECK(std::isnan(s[10]));
    CHECK(float_bits(s[10]) == 0x7FC00000u);  // quiet NaN
    CHECK(std::isnan(s[11]));
    CHECK(float_bits(s[11]) == 0x7F802000u);  // signalling NaN, payload kept
    StateDict<double> d = io::load_safetensors<double>(dir + "f16.safetensors");
    CHECK(d.at("special").values[2] == std::ldexp(1.0, -24));
  }
  SECTION("BF16: values and special bit patterns") {
    StateDict<float> f = io::load_safetensors<float>(dir + "bf16.safetensors");
    check_formula(f.at("values"), {12});
    const std::vector<float>& s = f.at("special").values;
    REQUIRE(s.size() == 12);
    const std::uint32_t bits[] = {0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80,
                                  0xC000, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81};
    for (std::size_t i = 0; i < 12; ++i) CHECK(float_bits(s[i]) == bits[i] << 16);
    CHECK(s[2] == std::ldexp(1.0f, -133));  // smallest bfloat16 subnormal
    CHECK(s[5] == 1.0f);
    CHECK(s[8] == std::numeric_limits<float>::infinity());
    CHECK(std::isnan(s[10]));
  }
  SECTION("I64 num_batches_tracked as a 0-d tensor, data not in key order") {
    StateDict<double> d = io::load_safetensors<double>(dir + "i64_num_batches_tracked.safetensors");
    CHECK(d.at("bn.num_batches_tracked").shape.empty());
    CHECK(d.at("bn.num_batches_tracked").values == std::vector<double>{12345});
    CHECK(d.at("big").values == std::vector<double>{-1099511627776.0, 7});
    check_formula(d.at("bn.running_mean"), {4});
  }
  SECTION("zero-element and 0-d tensors, a file without tensors") {
    StateDict<float> f = io::load_safetensors<float>(dir + "empty_tensor.safetensors");
    CHECK(f.at("empty").shape == std::vector<Index>{0, 3});
    CHECK(f.at("empty").values.empty());
    CHECK(f.at("empty2").shape == std::vector<Index>{2, 0});
    CHECK(f.at("tail").values.empty());
    CHECK(f.at("scalar").shape.empty());
    CHECK(f.at("scalar").values == std::vector<float>{-3.0f});
    CHECK(io::load_safetensors<float>(dir + "no_tensors.safetensors").empty());
  }
  SECTION("metadata, escaped names, unpadded header, whitespace padding") {
    const io::SafetensorsFile m = io::read_safetensors(dir + "metadata.safetensors");
    CHECK(m.metadata.at("format") == "pt");
    CHECK(m.metadata.at("note") == "caf\xc3\xa9 \xe2\x9c\x93");
    check_formula(io::to_state_dict<float>(m, "metadata").at("w"), {2});
    StateDict<float> u = io::load_safetensors<float>(dir + "unpadded_header.safetensors");
    check_formula(u.at("a\"b\\c\xc3\xa9"), {2});
    check_formula(io::load_safetensors<float>(dir + "whitespace_padding.safetensors").at("w"), {2});
  }
}

TEST_CASE("half and bfloat16 conversion is exact for every bit pattern", "[io][safetensors]") {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = io::half_to_float(static_cast<std::uint16_t>(h));
    const double expected = half_oracle(static_cast<std::uint16_t>(h));
    if (std::isnan(expected)) {
      REQUIRE(std::isnan(f));
      REQUIRE(float_bits(f) == (((h & 0x8000u) << 16) | 0x7F800000u | ((h & 0x3FFu) << 13)));
    } else {
      REQUIRE(static_cast<double>(f) == expected);
      REQUIRE(std::signbit(f) == ((h & 0x8000u) != 0));
    }
#if defined(__FLT16_MAX__) && !defined(__clang__)
    _Float16 native;
    const std::uint16_t bits16 = static_cast<std::uint16_t>(h);
    std::memcpy(&native, &bits16, sizeof native);
    if (!std::isnan(expected)) REQUIRE(static_cast<float>(native) == f);
#endif
    const float b = io::bfloat16_to_float(static_cast<std::uint16_t>(h));
    REQUIRE(float_bits(b) == h << 16);
  }
}

namespace {
/// A layer of named tensors for the streaming loader: (name, shape) pairs, values held here.
struct TensorsLayer {
  std::vector<std::pair<std::string, std::vector<Index>>> specs;
  std::map<std::string, std::vector<float>> values;
  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    for (const auto& spec : specs) {
      std::vector<float>& v = values[spec.first];
      Index n = 1;
      for (Index d : spec.second) n *= d;
      v.assign(std::size_t(n), -7.0f);
      visit(ParameterRef<float>{prefix + spec.first, v.data(), spec.second});
    }
  }
};
}  // namespace

TEST_CASE("SafetensorsLoader reads each tensor as load_safetensors converts it", "[io][safetensors]") {
  const std::string dir = kData + "/valid_io/";
  for (const char* file : {"f32.safetensors", "f16.safetensors", "bf16.safetensors", "f64.safetensors"}) {
    INFO(file);
    const StateDict<float> whole = io::load_safetensors<float>(dir + file);
    TensorsLayer layer;
    for (const auto& entry : whole) layer.specs.emplace_back(entry.first, entry.second.shape);
    io::SafetensorsLoader<float> loader(dir + file);
    loader(layer, "");
    CHECK(loader.finish().ok());
    for (const auto& entry : whole) {
      const std::vector<float>& got = layer.values.at(entry.first);
      REQUIRE(got.size() == entry.second.values.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(float_bits(got[i]) == float_bits(entry.second.values[i]));
    }
  }
  SECTION("missing, unexpected and mis-shaped tensors are reported, naming the file") {
    TensorsLayer layer;
    layer.specs = {{"values", {3, 5}}, {"absent", {2}}};
    io::SafetensorsLoader<float> loader(dir + "f16.safetensors");
    loader(layer, "");
    CHECK(layer.values.at("values") == std::vector<float>(15, -7.0f));  // not written
    CHECK_THROWS_WITH(loader.finish(), Contains("f16.safetensors") && Contains("1 missing key(s)") &&
                                           Contains("absent") && Contains("unexpected key(s)") &&
                                           Contains("special") && Contains("values: expected [3, 5], found [3, 4]"));
    io::SafetensorsLoader<float> lenient(dir + "f16.safetensors");
    lenient(layer, "");
    const LoadReport report = lenient.finish(/*strict=*/false);
    CHECK(report.missing == std::vector<std::string>{"absent"});
    CHECK(report.unexpected == std::vector<std::string>{"special"});
    CHECK(report.mismatched.size() == 1);
  }
  CHECK_THROWS_AS(io::SafetensorsLoader<float>(dir + "no_such_file.safetensors"), FormatError);
}

TEST_CASE("save_safetensors -> load_safetensors is bit-exact for float and double", "[io][safetensors]") {
  SECTION("float, with metadata, special values and awkward names") {
    StateDict<float> dict;
    dict["b.weight"] = {{2, 3},
                        {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()}};
    dict["a.bias"] = {{3}, {0.1f, 0.2f, 0.3f}};
    dict["scalar"] = {{}, {42.0f}};
    dict["empty"] = {{0, 4}, {}};
    dict["name \"quoted\" \xc3\xa9"] = {{1}, {7.0f}};
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"arch", "sknet50"}};
    const std::string path = temp_path("round_trip_f32.safetensors");
    io::save_safetensors<float>(path, dict, metadata);

    const io::SafetensorsFile raw = io::read_safetensors(path);
    CHECK(raw.metadata == metadata);
    for (const auto& t : raw.tensors) CHECK(t.second.dtype == io::DType::F32);
    const StateDict<float> back = io::to_state_dict<float>(raw, path);
    REQUIRE(back.size() == dict.size());
    for (const auto& entry : dict) {
      INFO(entry.first);
      const NamedTensor<float>& t = back.at(entry.first);
      CHECK(t.shape == entry.second.shape);
      REQUIRE(t.values.size() == entry.second.values.size());
      if (!t.values.empty())
        CHECK(std::memcmp(t.values.data(), entry.second.values.data(), t.values.size() * sizeof(float)) == 0);
    }

    // Layout: header padded to a multiple of 8 with spaces, sorted keys, data in that order.
    std::ifstream in(path, std::ios::binary);
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
    CHECK(n % 8 == 0);
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    CHECK(header.rfind("{\"__metadata__\":", 0) == 0);
    CHECK(header.find("\"a.bias\"") < header.find("\"b.weight\""));
    CHECK(header.find("\"a.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}") != std::string::npos);
    CHECK(bytes.size() == 8 + n + (6 + 3 + 1 + 1) * 4);
  }
  SECTION("double is written as F64") {
    StateDict<double> dict;
    dict["x"] = {{2, 2}, {0.1, -1e300, 5e-324, 3.0}};
    const std::string path = temp_path("round_trip_f64.safetensors");
    io::save_safetensors<double>(path, dict);
    const io::SafetensorsFile raw = io::read_safetensors(path);
    CHECK(raw.metadata.empty());
    CHECK(raw.tensors.at("x").dtype == io::DType::F64);
    const StateDict<double> back = io::to_state_dict<double>(raw, path);
    for (std::size_t i = 0; i < 4; ++i) CHECK(double_bits(back.at("x").values[i]) == double_bits(dict["x"].values[i]));
    // F64 read as float rounds once.
    CHECK(io::load_safetensors<float>(path).at("x").values[0] == 0.1f);
  }
  SECTION("an empty state dict") {
    const std::string path = temp_path("round_trip_empty.safetensors");
    io::save_safetensors<float>(path, StateDict<float>{});
    CHECK(io::load_safetensors<float>(path).empty());
  }
}

TEST_CASE("safetensors errors name the path: missing file, bad save, inconsistent tensors", "[io][safetensors]") {
  const std::string missing = temp_path("does_not_exist.safetensors");
  CHECK_THROWS_WITH(io::read_safetensors(missing), Contains(missing) && Contains("No such file"));
  const std::string bad_dir = temp_path("no_such_dir/x.safetensors");
  StateDict<float> dict;
  dict["w"] = {{2}, {1.0f, 2.0f}};
  CHECK_THROWS_WITH(io::save_safetensors<float>(bad_dir, dict), Contains(bad_dir));
  dict["w"] = {{3}, {1.0f, 2.0f}};
  CHECK_THROWS_WITH(io::save_safetensors<float>(temp_path("x.safetensors"), dict),
                    Contains("x.safetensors") && Contains("'w'") && Contains("[3]"));

  io::SafetensorsFile file;
  file.tensors["w"] = io::RawTensor{io::DType::F16, {3}, {0, 0, 0, 0}};
  CHECK_THROWS_WITH(io::to_state_dict<float>(file, "memory"), Contains("memory") && Contains("expected 6, got 4"));
  CHECK_THROWS_AS(io::serialize_safetensors(file), FormatError);
}

TEST_CASE("parse_safetensors: unaligned buffers, every truncation is an error", "[io][safetensors]") {
  std::ifstream in(kData + "/valid_io/f16.safetensors", std::ios::binary);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 16);
  std::vector<unsigned char> shifted(bytes.size() + 3);
  std::memcpy(shifted.data() + 3, bytes.data(), bytes.size());
  const io::SafetensorsFile file = io::parse_safetensors(shifted.data() + 3, bytes.size(), "shifted");
  check_formula(io::to_state_dict<double>(file, "shifted").at("values"), {3, 4});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(io::parse_safetensors(bytes.data(), n, "prefix"), FormatError);
  }
  // serialize_safetensors reproduces a parsed file exactly.
  const io::SafetensorsFile again =
      io::parse_safetensors(io::serialize_safetensors(file).data(), io::serialize_safetensors(file).size(), "again");
  CHECK(again.tensors.at("special").bytes == file.tensors.at("special").bytes);
  CHECK(again.tensors.at("values").shape == std::vector<std::int64_t>{3, 4});
}

TEST_CASE("safetensors readers refuse FIFOs, devices and directories without blocking", "[io][safetensors]") {
  ::alarm(20);  // a regression would block in open() on the FIFO: fail the run instead of hanging
  const std::string fifo = temp_path("fifo.safetensors");
  ::unlink(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(io::load_safetensors<float>(fifo),
                    Contains(fifo) && Contains("expected a regular file, got a FIFO"));
  CHECK_THROWS_WITH(io::read_safetensors(fifo), Contains(fifo) && Contains("FIFO"));
  ::unlink(fifo.c_str());
  CHECK_THROWS_WITH(io::load_safetensors<float>("/dev/zero"), Contains("/dev/zero") && Contains("character device"));
  CHECK_THROWS_WITH(io::read_safetensors("/dev/zero"), Contains("/dev/zero") && Contains("character device"));
  const std::string dir = temp_path("a_directory.safetensors");
  fs::create_directories(dir);
  CHECK_THROWS_WITH(io::load_safetensors<float>(dir), Contains(dir) && Contains("got a directory"));
  ::alarm(0);
}

TEST_CASE("safetensors header: a NUL byte after the JSON object is an error", "[io][safetensors]") {
  // nlohmann's parser stops at a NUL, so without the check the text after it was never looked at.
  const auto file = [](const std::string& header) {
    std::vector<unsigned char> bytes(8 + header.size());
    io::detail::store_le<std::uint64_t>(header.size(), bytes.data());
    std::memcpy(bytes.data() + 8, header.data(), header.size());
    return bytes;
  };
  const auto parse = [](const std::vector<unsigned char>& b) {
    return io::parse_safetensors(b.data(), b.size(), "mem");
  };
  CHECK(parse(file("{}      ")).tensors.empty());
  CHECK_THROWS_WITH(parse(file(std::string("{}\0 junk!", 9))),
                    Contains("mem") && Contains("NUL byte at header offset 2"));
  CHECK_THROWS_WITH(parse(file(std::string("{}\0\0\0\0\0\0", 8))), Contains("NUL byte"));
  CHECK_THROWS_WITH(parse(file(std::string("{\"a\0\":1}   ", 11))), Contains("NUL byte at header offset 3"));
  CHECK_THROWS_WITH(parse(file("{} junk!")), Contains("not valid JSON"));  // the same text without the NUL
}
