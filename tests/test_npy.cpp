// sknet/io/npy.hpp: the malformed-file corpus, files written by numpy, and write -> read round trips.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>

#ifdef INCLUDE_NLOHMANN_JSON_HPP_
#error "sknet/io/npy.hpp must not pull in nlohmann/json (only the safetensors reader needs it)"
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace sknet;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kData = SKNET_TEST_DATA_DIR;

std::vector<unsigned char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <class Scalar>
void check_formula(const NamedTensor<Scalar>& t, const std::vector<Index>& shape) {
  CHECK(t.shape == shape);
  for (std::size_t i = 0; i < t.values.size(); ++i)
    CHECK(t.values[i] == static_cast<Scalar>(static_cast<double>(i) * 0.5 - 3));
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "sknet_test_npy";
  fs::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("every malformed .npy file is a FormatError naming the file and the rule", "[io][npy]") {
  std::ifstream in(kData + "/malformed/expected.json");
  REQUIRE(in);
  const nlohmann::json expected = nlohmann::json::parse(in);
  const fs::path dir = fs::path(kData) / "malformed" / "npy";
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    seen.insert(name);
    INFO("file: " << name);
    REQUIRE(expected.contains(name));
    std::string message;
    try {
      io::read_npy<float>(entry.path().string());
    } catch (const FormatError& e) {
      message = e.what();
    }
    INFO("message: " << message);
    CHECK_THAT(message, Contains(expected[name].get<std::string>()) && Contains(name));
    CHECK_THROWS_AS(io::read_npy<double>(entry.path().string()), FormatError);
  }
  std::size_t listed = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    if (fs::path(it.key()).extension() != ".npy") continue;
    ++listed;
    CHECK(seen.count(it.key()) == 1);
  }
  CHECK(listed == seen.size());
  CHECK(seen.size() >= 25);
}

TEST_CASE(".npy files written by numpy load with exact values", "[io][npy]") {
  const std::string dir = kData + "/valid_io/";
  check_formula(io::read_npy<float>(dir + "f4_v1.npy"), {2, 3});
  check_formula(io::read_npy<double>(dir + "f4_v1.npy"), {2, 3});
  check_formula(io::read_npy<double>(dir + "f8_v1.npy"), {2, 3, 4});
  check_formula(io::read_npy<float>(dir + "f8_v1.npy"), {2, 3, 4});
  check_formula(io::read_npy<float>(dir + "f4_v2.npy"), {5});
  check_formula(io::read_npy<double>(dir + "f8_v3.npy"), {1, 4});
  check_formula(io::read_npy<double>(dir + "reordered_header.npy"), {3, 1});
  const NamedTensor<double> scalar = io::read_npy<double>(dir + "scalar_0d.npy");
  CHECK(scalar.shape.empty());
  CHECK(scalar.values == std::vector<double>{2.5});
  const NamedTensor<float> empty = io::read_npy<float>(dir + "empty.npy");
  CHECK(empty.shape == std::vector<Index>{0, 3});
  CHECK(empty.values.empty());
}

TEST_CASE("write_npy produces numpy's own bytes and round-trips bit-exactly", "[io][npy]") {
  const std::string dir = kData + "/valid_io/";
  SECTION("byte-identical to np.save for the same array") {
    const std::pair<const char*, bool> files[] = {
        {"f4_v1.npy", false}, {"f8_v1.npy", true}, {"scalar_0d.npy", true}, {"empty.npy", false}};
    for (const auto& [name, is_double] : files) {
      INFO(name);
      const std::vector<unsigned char> original = file_bytes(dir + name);
      const std::string path = temp_path(std::string("copy_") + name);
      if (is_double) {
        io::write_npy<double>(path, io::read_npy<double>(dir + name));
      } else {
        io::write_npy<float>(path, io::read_npy<float>(dir + name));
      }
      CHECK(file_bytes(path) == original);
    }
  }
  SECTION("float and double, special values, header layout") {
    const std::vector<float> f = {1.5f,
                                  -0.0f,
                                  std::numeric_limits<float>::denorm_min(),
                                  std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN(),
                                  std::numeric_limits<float>::lowest()};
    const std::string pf = temp_path("f.npy");
    io::write_npy<float>(pf, {3, 1, 2}, f.data());
    const NamedTensor<float> bf = io::read_npy<float>(pf);
    CHECK(bf.shape == std::vector<Index>{3, 1, 2});
    REQUIRE(bf.values.size() == f.size());
    CHECK(std::memcmp(bf.values.data(), f.data(), f.size() * sizeof(float)) == 0);
    const std::vector<unsigned char> bytes = file_bytes(pf);
    CHECK(bytes[6] == 1);
    CHECK(bytes[7] == 0);
    const std::size_t header = static_cast<std::size_t>(bytes[8] | (bytes[9] << 8));
    CHECK((10 + header) % 64 == 0);
    CHECK(bytes[10 + header - 1] == '\n');
    CHECK(bytes.size() == 10 + header + f.size() * 4);

    const std::vector<double> d = {0.1, -1e300, 5e-324};
    const std::string pd = temp_path("d.npy");
    io::write_npy<double>(pd, NamedTensor<double>{{3}, d});
    const NamedTensor<double> bd = io::read_npy<double>(pd);
    CHECK(bd.shape == std::vector<Index>{3});
    CHECK(std::memcmp(bd.values.data(), d.data(), d.size() * sizeof(double)) == 0);
  }
  SECTION("0-d and empty arrays") {
    const float one = 4.0f;
    const std::string p0 = temp_path("zero_d.npy");
    io::write_npy<float>(p0, {}, &one);
    CHECK(io::read_npy<float>(p0).values == std::vector<float>{4.0f});
    CHECK(io::read_npy<float>(p0).shape.empty());
    const std::string pe = temp_path("empty.npy");
    io::write_npy<float>(pe, {2, 0, 5}, nullptr);
    CHECK(io::read_npy<float>(pe).shape == std::vector<Index>{2, 0, 5});
  }
}

TEST_CASE(".npy errors name the path: missing file, bad shapes, truncation", "[io][npy]") {
  const std::string missing = temp_path("does_not_exist.npy");
  CHECK_THROWS_WITH(io::read_npy<float>(missing), Contains(missing) && Contains("No such file"));
  const std::string bad_dir = temp_path("no_such_dir/x.npy");
  const float v[2] = {1, 2};
  CHECK_THROWS_WITH(io::write_npy<float>(bad_dir, {2}, v), Contains(bad_dir));
  CHECK_THROWS_WITH(io::write_npy<float>(temp_path("neg.npy"), {-1, 2}, v),
                    Contains("neg.npy") && Contains("negative"));
  CHECK_THROWS_WITH(io::write_npy<float>(temp_path("mismatch.npy"), NamedTensor<float>{{3}, {1, 2}}),
                    Contains("mismatch.npy") && Contains("[3]"));

  const std::vector<unsigned char> bytes = file_bytes(kData + "/valid_io/f8_v3.npy");
  std::vector<unsigned char> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  check_formula(io::parse_npy<double>(shifted.data() + 1, bytes.size(), "shifted"), {1, 4});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(io::parse_npy<float>(bytes.data(), n, "prefix"), FormatError);
  }
}

TEST_CASE(".npy reader refuses FIFOs, devices and directories without blocking", "[io][npy]") {
  // Before the fix a FIFO blocked forever in open() and /dev/zero was read until memory ran out:
  // the alarm turns such a hang into a failed test run.
  ::alarm(20);
  const std::string fifo = temp_path("fifo.npy");
  ::unlink(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(io::read_npy<float>(fifo), Contains(fifo) && Contains("expected a regular file, got a FIFO"));
  CHECK_THROWS_WITH(io::read_npy_layout(fifo), Contains("FIFO"));
  ::unlink(fifo.c_str());
  CHECK_THROWS_WITH(io::read_npy<float>("/dev/zero"),
                    Contains("/dev/zero") && Contains("expected a regular file, got a character device"));
  const std::string dir = temp_path("a_directory.npy");
  fs::create_directories(dir);
  CHECK_THROWS_WITH(io::read_npy<float>(dir), Contains(dir) && Contains("got a directory"));
  ::alarm(0);
}

TEST_CASE(".npy header is read and checked before the data", "[io][npy]") {
  const std::string path = temp_path("layout.npy");
  const std::vector<float> values(2 * 3 * 4, 1.5f);
  io::write_npy<float>(path, {2, 3, 4}, values.data());
  const io::NpyLayout layout = io::read_npy_layout(path);
  CHECK(layout.shape == std::vector<Index>{2, 3, 4});
  CHECK(layout.itemsize == 4);
  CHECK(layout.numel == 24);
  CHECK(layout.data_start + 24 * 4 == fs::file_size(path));
  // A header that declares more data than the file holds is refused before any data is read.
  fs::resize_file(path, fs::file_size(path) - 4);
  CHECK_THROWS_WITH(io::read_npy_layout(path), Contains("truncated data") && Contains("expected 96 bytes"));
  CHECK_THROWS_WITH(io::read_npy<float>(path), Contains("truncated data"));
}

TEST_CASE("write_npy replaces files atomically and leaves nothing behind on failure", "[io][npy]") {
  const fs::path dir = temp_path("atomic");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const float v[2] = {1, 2};
  io::write_npy<float>((dir / "x.npy").string(), {2}, v);
  const float w[3] = {3, 4, 5};
  io::write_npy<float>((dir / "x.npy").string(), {3}, w);  // replaces the file
  CHECK(io::read_npy<float>((dir / "x.npy").string()).values == std::vector<float>{3, 4, 5});
  // The target is a directory: the rename fails, and the temporary file is removed.
  fs::create_directories(dir / "taken.npy");
  CHECK_THROWS_WITH(io::write_npy<float>((dir / "taken.npy").string(), {2}, v), Contains("taken.npy"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"taken.npy", "x.npy"});
  // A symbolic link is followed: the file it names is replaced and the link kept.
  fs::create_symlink(dir / "x.npy", dir / "link.npy");
  io::write_npy<float>((dir / "link.npy").string(), {2}, v);
  CHECK(fs::is_symlink(dir / "link.npy"));
  CHECK(io::read_npy<float>((dir / "x.npy").string()).values == std::vector<float>{1, 2});
  // A device is written in place, never replaced by a regular file.
  io::write_npy<float>("/dev/null", {2}, v);
  CHECK(fs::is_character_file("/dev/null"));
  fs::remove_all(dir);
}
