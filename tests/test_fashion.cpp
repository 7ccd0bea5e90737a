// Fashion-MNIST demo pieces: the IDX reader (plain and gzip'd, malformed files), the canvas
// placement (tools/fashion_data.py in C++), and agreement with PyTorch on the embedded sample:
// tests/data/fashion/sample_*.npy and models/fashion_sknet.safetensors, written by
// tools/fashion_attention.py and tools/train_fashion.py.
#include <catch2/catch.hpp>

#include <sknet/io/safetensors.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "idx.hpp"
#include "placement.hpp"
#include "sample_npy.hpp"

using namespace sknet;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("sknet_test_fashion_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::vector<unsigned char> be32(std::uint32_t v) {
  return {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 8),
          static_cast<unsigned char>(v)};
}

/// IDX bytes: magic, dims, then `data`.
std::vector<unsigned char> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out = be32(magic);
  for (std::uint32_t d : dims) {
    const auto b = be32(d);
    out.insert(out.end(), b.begin(), b.end());
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_bytes(const fs::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

/// Writes `bytes` gzip'd with zlib's gz* API (a real gzip file with header and trailer).
void write_gzip(const fs::path& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb9");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

/// `bytes` gzip'd in memory (compress2 would write a zlib, not a gzip, stream).
std::vector<unsigned char> gzip_bytes(const std::vector<unsigned char>& bytes) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<unsigned char> out(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 64);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<unsigned char> read_bytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

// 3 images of 2 x 4 pixels and their labels.
const std::vector<unsigned char> kPixels = {0,  1,  2,  3,  4,  5,  6,  7,  10,  20,  30,  40,
                                            50, 60, 70, 80, 255, 254, 253, 252, 251, 250, 249, 248};
const std::vector<unsigned char> kLabels = {9, 0, 4};

}  // namespace

TEST_CASE("IDX: plain and gzip'd images and labels read back", "[idx]") {
  const fs::path dir = temp_dir();
  const auto images = idx_bytes(0x00000803, {3, 2, 4}, kPixels);
  const auto labels = idx_bytes(0x00000801, {3}, kLabels);
  write_bytes(dir / "images-idx3-ubyte", images);
  write_bytes(dir / "labels-idx1-ubyte", labels);
  write_gzip(dir / "images-idx3-ubyte.gz", images);
  write_gzip(dir / "labels-idx1-ubyte.gz", labels);
  REQUIRE(read_bytes(dir / "images-idx3-ubyte.gz").size() > 2);
  CHECK(read_bytes(dir / "images-idx3-ubyte.gz")[0] == 0x1f);  // really gzip'd

  for (const std::string suffix : {"", ".gz"}) {
    INFO("suffix '" << suffix << "'");
    const fashion::IdxImages im = fashion::read_idx_images((dir / ("images-idx3-ubyte" + suffix)).string());
    CHECK(im.count == 3);
    CHECK(im.rows == 2);
    CHECK(im.cols == 4);
    CHECK(im.pixels == std::vector<std::uint8_t>(kPixels.begin(), kPixels.end()));
    CHECK(im.image(2)[0] == 255);
    const auto lab = fashion::read_idx_labels((dir / ("labels-idx1-ubyte" + suffix)).string());
    CHECK(lab == std::vector<std::uint8_t>(kLabels.begin(), kLabels.end()));
    const auto both = fashion::read_idx_dataset((dir / ("images-idx3-ubyte" + suffix)).string(),
                                           (dir / ("labels-idx1-ubyte" + suffix)).string(), 10);
    CHECK(both.first.count == both.second.size());
  }
  // empty arrays are valid
  const auto empty = idx_bytes(0x00000803, {0, 28, 28}, {});
  CHECK(fashion::parse_idx_images(empty.data(), empty.size(), "empty").count == 0);
  fs::remove_all(dir);
}

TEST_CASE("IDX: malformed files throw FormatError naming the file and the rule", "[idx]") {
  const fs::path dir = temp_dir();
  const auto images = idx_bytes(0x00000803, {3, 2, 4}, kPixels);
  const auto labels = idx_bytes(0x00000801, {3}, kLabels);
  const auto parse_images = [](const std::vector<unsigned char>& b) {
    return fashion::parse_idx_images(b.data(), b.size(), "mem.idx");
  };
  const auto parse_labels = [](const std::vector<unsigned char>& b) {
    return fashion::parse_idx_labels(b.data(), b.size(), "mem.idx");
  };

  SECTION("bad magic") {
    CHECK_THROWS_AS(parse_images(idx_bytes(0x00000802, {3, 8}, kPixels)), FormatError);
    CHECK_THROWS_WITH(parse_images(idx_bytes(0x00000802, {3, 8}, kPixels)),
                      Contains("mem.idx") && Contains("bad IDX magic") && Contains("0x00000803") &&
                          Contains("0x00000802"));
    CHECK_THROWS_WITH(parse_labels(images), Contains("bad IDX magic") && Contains("0x00000801"));  // images as labels
    CHECK_THROWS_WITH(parse_images(idx_bytes(0x00000D03, {3, 2, 4}, kPixels)), Contains("bad IDX magic"));  // float
    CHECK_THROWS_WITH(parse_images(idx_bytes(0x01000803, {3, 2, 4}, kPixels)), Contains("bad IDX magic"));
    std::vector<unsigned char> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!', '!', '!', '!'};
    CHECK_THROWS_WITH(parse_images(text), Contains("bad IDX magic"));
  }
  SECTION("truncated") {
    CHECK_THROWS_WITH(parse_images({0, 0}), Contains("too short"));
    auto cut = images;
    cut.resize(10);  // inside the dims
    CHECK_THROWS_WITH(parse_images(cut), Contains("truncated header"));
    cut = images;
    cut.pop_back();
    CHECK_THROWS_WITH(parse_images(cut),
                      Contains("truncated data") && Contains("3 x 2 x 4") && Contains("24") && Contains("23"));
    auto lab = labels;
    lab.resize(lab.size() - 2);
    CHECK_THROWS_WITH(parse_labels(lab), Contains("truncated data"));
  }
  SECTION("size does not match the dims") {
    auto extra = images;
    extra.push_back(7);
    CHECK_THROWS_WITH(parse_images(extra), Contains("size does not match") && Contains("1 extra"));
    CHECK_THROWS_AS(parse_images(idx_bytes(0x00000803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, kPixels)), FormatError);
  }
  SECTION("images and labels of different counts") {
    write_bytes(dir / "images", images);
    write_bytes(dir / "labels", idx_bytes(0x00000801, {2}, {1, 2}));
    CHECK_THROWS_WITH(fashion::read_idx_dataset((dir / "images").string(), (dir / "labels").string()),
                      Contains("dims mismatch") && Contains("expected 3 labels") && Contains("got 2"));
    write_bytes(dir / "labels", idx_bytes(0x00000801, {3}, {1, 2, 10}));
    CHECK_THROWS_WITH(fashion::read_idx_dataset((dir / "images").string(), (dir / "labels").string(), 10),
                      Contains("label 2") && Contains("0..9"));
  }
  SECTION("broken gzip") {
    write_gzip(dir / "images.gz", images);
    const auto gz = read_bytes(dir / "images.gz");
    auto cut = gz;
    cut.resize(gz.size() / 2);
    write_bytes(dir / "cut.gz", cut);
    CHECK_THROWS_AS(fashion::read_idx_images((dir / "cut.gz").string()), FormatError);
    CHECK_THROWS_WITH(fashion::read_idx_images((dir / "cut.gz").string()),
                      Contains("cut.gz") && Contains("truncated gzip stream"));
    auto corrupt = gz;
    for (std::size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] ^= 0x5A;
    CHECK_THROWS_WITH(parse_images(corrupt), Contains("gzip"));
    auto trailing = gz;
    trailing.push_back(0);
    CHECK_THROWS_WITH(parse_images(trailing), Contains("trailing byte"));
    // a gzip'd file whose content is itself malformed reports the IDX rule
    write_gzip(dir / "short.gz", std::vector<unsigned char>(images.begin(), images.end() - 3));
    CHECK_THROWS_WITH(fashion::read_idx_images((dir / "short.gz").string()), Contains("truncated data"));
  }
  SECTION("gzip bomb: decompression stops at the size the header declares") {
    // 24 declared data bytes followed by 64 MiB of zeros, about 64 KB compressed. Before the cap
    // followed the header, all of it was inflated (up to 2 GiB) before the size check.
    gzFile f = gzopen((dir / "bomb.gz").string().c_str(), "wb9");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, images.data(), static_cast<unsigned>(images.size())) == static_cast<int>(images.size()));
    const std::vector<unsigned char> zeros(1 << 20, 0);
    for (int i = 0; i < 64; ++i) REQUIRE(gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size())) > 0);
    REQUIRE(gzclose(f) == Z_OK);
    CHECK(fs::file_size(dir / "bomb.gz") < 200000);
    CHECK_THROWS_WITH(fashion::read_idx_images((dir / "bomb.gz").string()),
                      Contains("bomb.gz") && Contains("more than the 40 bytes its IDX header declares") &&
                          Contains("stopped after 41 bytes"));
    // A header that declares more than the limit is refused as soon as it is decompressed.
    const auto huge = idx_bytes(0x00000803, {60000, 1000, 1000}, {});
    CHECK_THROWS_WITH(fashion::idx_detail::gunzip(gzip_bytes(huge).data(), gzip_bytes(huge).size(), "huge.gz"),
                      Contains("declares 60000000016 bytes") && Contains("limit"));
  }
  SECTION("missing file") {
    CHECK_THROWS_WITH(fashion::read_idx_images((dir / "nope.gz").string()),
                      Contains("nope.gz") && Contains("cannot open"));
  }
  fs::remove_all(dir);
}

TEST_CASE("placement: offsets, bilinear resize and normalisation match tools/fashion_data.py", "[placement]") {
  // Reference values printed by tools/fashion_data.py (PyTorch 1.13, NumPy 1.24).
  CHECK(fashion::splitmix64(0) == 0xe220a8397b1dcdafull);
  CHECK(fashion::splitmix64(std::uint64_t(2024) << 32) == 0x133f69d6cea43dbfull);
  CHECK(fashion::scaled_size(0.75) == 21);
  CHECK(fashion::scaled_size(1.0) == 28);
  CHECK(fashion::scaled_size(1.25) == 35);
  CHECK(fashion::scaled_size(1.5) == 42);
  CHECK(fashion::scaled_size(1.75) == 49);
  CHECK_THROWS_AS(fashion::scaled_size(2.5), std::invalid_argument);
  const auto offsets = [](double scale) {
    std::vector<std::pair<int, int>> out;
    for (std::uint64_t i = 0; i < 4; ++i) {
      int t = 0, l = 0;
      fashion::eval_offset(i, fashion::scaled_size(scale), fashion::kEvalSeed, t, l);
      out.emplace_back(t, l);
    }
    return out;
  };
  CHECK(offsets(1.0) == std::vector<std::pair<int, int>>{{33, 11}, {18, 6}, {4, 4}, {35, 22}});
  CHECK(offsets(0.75) == std::vector<std::pair<int, int>>{{43, 13}, {29, 26}, {39, 39}, {11, 35}});
  CHECK(offsets(1.75) == std::vector<std::pair<int, int>>{{15, 1}, {1, 10}, {11, 11}, {11, 7}});

  CHECK(fashion::normalize_pixel(0) == -0x1.9ed252p-1f);
  CHECK(fashion::normalize_pixel(255) == 0x1.02e69ep+1f);
  CHECK(fashion::normalize_pixel(128) == 0x1.393c26p-1f);

  std::vector<std::uint8_t> img(28 * 28);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) img[y * 28 + x] = static_cast<std::uint8_t>((7 * y + 13 * x + (x * y) % 5) % 256);
  struct Probe {
    int size;
    std::vector<std::tuple<int, int, float>> values;
    double sum;
  };
  const std::vector<Probe> probes = {
      {21,
       {{0, 0, 0x1.ae38e6p+1f}, {1, 2, 0x1.8cp+5f}, {5, 7, 0x1.59d556p+7f}, {20, 20, 0x1.c071dap+4f},
        {10, 3, 0x1.2bd556p+7f}},
       0x1.bc8d2ac3c8p+15},
      {35,
       {{0, 0, 0.0f}, {1, 2, 0x1.973334p+4f}, {5, 7, 0x1.93p+6f}, {34, 34, 0x1p+5f}, {17, 3, 0x1.facccccp+6f}},
       0x1.34efd340eap+17},
      {49,
       {{0, 0, 0.0f}, {1, 2, 0x1.dce5e2p+3f}, {5, 7, 0x1.18c68ap+6f}, {48, 48, 0x1p+5f}, {24, 3, 0x1.d30002p+6f}},
       0x1.2ef0fb03ecp+18},
  };
  for (const auto& p : probes) {
    INFO("resize 28 -> " << p.size);
    std::vector<float> out(static_cast<std::size_t>(p.size) * p.size);
    fashion::resize_bilinear(img.data(), 28, 28, p.size, p.size, out.data());
    for (const auto& v : p.values) CHECK(out[std::get<0>(v) * p.size + std::get<1>(v)] == std::get<2>(v));
    double sum = 0;
    for (float v : out) sum += v;
    CHECK(sum == Approx(p.sum).epsilon(1e-12));
  }

  // scale 1.0: a plain copy at the offset, background elsewhere
  std::vector<float> canvas(64 * 64);
  fashion::place(img.data(), 1, 0, 1.0, fashion::kEvalSeed, {}, canvas.data());
  CHECK(canvas[0] == fashion::normalize_pixel(0));
  CHECK(canvas[33 * 64 + 11] == fashion::normalize_pixel(img[0]));
  CHECK(canvas[(33 + 27) * 64 + 11 + 27] == fashion::normalize_pixel(img[27 * 28 + 27]));
  CHECK(canvas[(33 + 28) * 64 + 11 + 27] == fashion::normalize_pixel(0));
}

// ---- agreement with PyTorch on the embedded sample ------------------------------------------
// A missing fixture is a loud failure naming the file, never a skip.

namespace {

/// The fixtures; the environment variables SKNET_FASHION_SAMPLE_DIR and SKNET_FASHION_MODEL
/// point the test at other files (e.g. a pilot model and its samples).
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}
const std::string kSampleDir = env_or("SKNET_FASHION_SAMPLE_DIR", SKNET_TEST_DATA_DIR "/fashion");
const std::string kModel = env_or("SKNET_FASHION_MODEL", SKNET_SOURCE_DIR "/models/fashion_sknet.safetensors");

/// Fails (loudly, naming the files) unless every fixture of the agreement test exists.
void require_fixtures() {
  std::vector<std::string> missing;
  for (const std::string name : {"sample_images.npy", "sample_labels.npy", "sample_inputs.npy", "sample_logits.npy",
                                 "sample_predictions.npy"})
    if (!fs::exists(kSampleDir + "/" + name)) missing.push_back(kSampleDir + "/" + name);
  if (!fs::exists(kModel)) missing.push_back(kModel);
  std::string list;
  for (const auto& m : missing) list += "\n  " + m;
  if (!missing.empty())
    FAIL("missing fixture file(s) of the PyTorch agreement test (run /usr/bin/python3 tools/train_fashion.py, then "
         "/usr/bin/python3 tools/fashion_attention.py):"
         << list);
}

SKNetConfig config_from(const std::map<std::string, std::string>& md) {
  const auto ints = [&](const std::string& key) {
    std::vector<Index> out;
    std::stringstream ss(md.at(key));
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::stol(item));
    return out;
  };
  SKNetConfig c;
  c.layers = ints("layers");
  c.planes = ints("planes");
  c.strides = ints("strides");
  c.paths = ints("paths")[0];
  c.groups = ints("groups")[0];
  c.reduction = ints("reduction")[0];
  c.min_width = ints("min_width")[0];
  c.base_width = ints("base_width")[0];
  c.num_classes = ints("num_classes")[0];
  c.in_channels = ints("in_chans")[0];
  c.stem_width = ints("stem_width")[0];
  c.stem = md.at("stem") == "small" ? Stem::small : Stem::imagenet;
  c.branch_kernel = md.count("branch_kernels") && md.at("branch_kernels") == "full" ? BranchKernel::full
                                                                                     : BranchKernel::dilated;
  return c;
}

}  // namespace

TEST_CASE("fashion sample: C++ placement reproduces PyTorch's inputs", "[fashion][agreement]") {
  require_fixtures();
  const auto images = fashion::read_npy_exact<std::uint8_t>(kSampleDir + "/sample_images.npy");
  const auto inputs = fashion::read_npy_exact<float>(kSampleDir + "/sample_inputs.npy");
  REQUIRE(images.shape.size() == 3);
  const std::size_t n = images.shape[0];
  REQUIRE(inputs.shape == std::vector<std::size_t>{n, 1, 64, 64});
  const auto md = io::read_safetensors(kModel).metadata;
  fashion::Normalization norm;
  norm.mean = std::stof(md.at("norm_mean"));
  norm.std_dev = std::stof(md.at("norm_std"));
  std::vector<float> placed(n * 64 * 64);
  fashion::place(images.values.data(), n, 0, 1.0, fashion::kEvalSeed, norm, placed.data());
  double worst = 0;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < placed.size(); ++i) {
    const double d = std::fabs(double(placed[i]) - double(inputs.values[i]));
    worst = std::max(worst, d);
    differing += d > 0;
  }
  INFO("max |C++ - PyTorch| = " << worst << ", " << differing << " of " << placed.size() << " values differ");
  CHECK(worst <= 1e-6);
}

TEST_CASE("fashion sample: C++ predictions and logits equal PyTorch's", "[fashion][agreement]") {
  require_fixtures();
  const auto images = fashion::read_npy_exact<std::uint8_t>(kSampleDir + "/sample_images.npy");
  const auto labels = fashion::read_npy_exact<std::int64_t>(kSampleDir + "/sample_labels.npy");
  const auto inputs = fashion::read_npy_exact<float>(kSampleDir + "/sample_inputs.npy");
  const auto logits_pt = fashion::read_npy_exact<float>(kSampleDir + "/sample_logits.npy");
  const auto pred_pt = fashion::read_npy_exact<std::int64_t>(kSampleDir + "/sample_predictions.npy");
  const std::size_t n = images.shape[0];
  io::SafetensorsFile file = io::read_safetensors(kModel);
  const SKNetConfig config = config_from(file.metadata);
  REQUIRE(config.paths == 2);
  const Index classes = config.num_classes;
  REQUIRE(logits_pt.shape == std::vector<std::size_t>{n, static_cast<std::size_t>(classes)});
  REQUIRE(pred_pt.values.size() == n);
  REQUIRE(labels.values.size() == n);
  fashion::Normalization norm;
  norm.mean = std::stof(file.metadata.at("norm_mean"));
  norm.std_dev = std::stof(file.metadata.at("norm_std"));
  PreparedSKNet<2> net = prepare_from_state_dict<2>(config, io::to_state_dict<float>(file, kModel), PrepareOptions{2});

  std::vector<float> placed(n * 64 * 64);
  fashion::place(images.values.data(), n, 0, 1.0, fashion::kEvalSeed, norm, placed.data());
  for (const bool cpp_placement : {false, true}) {
    INFO((cpp_placement ? "C++ placement of sample_images.npy" : "PyTorch's sample_inputs.npy"));
    const ConstTensorMap4<float> x(cpp_placement ? placed.data() : inputs.values.data(), static_cast<Index>(n), 64, 64,
                                   1);  // [N, 1, 64, 64] NCHW = NHWC for one channel
    const Tensor2<float> logits = net.forward(x);
    std::size_t same = 0, correct = 0;
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Index best = 0;
      for (Index k = 0; k < classes; ++k) {
        const double want = logits_pt.values[i * classes + k];
        err = std::max(err, std::fabs(double(logits(Index(i), k)) - want));
        scale = std::max(scale, std::fabs(want));
        if (logits(Index(i), k) > logits(Index(i), best)) best = k;
      }
      same += best == pred_pt.values[i];
      correct += best == labels.values[i];
    }
    INFO("predictions equal on " << same << " / " << n << ", max |logit diff| " << err << " (relative "
                                 << err / scale << "), C++ accuracy " << correct << " / " << n);
    CHECK(double(same) >= 0.999 * double(n));
    CHECK(err / scale <= 1e-4);
  }
}
