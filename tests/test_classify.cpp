// examples/classify: the preprocessing against torchvision's eval transform (golden data from
// tools/gen_classify_fixture.py), and the classify program end to end on a random checkpoint.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/models/infer_network.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

#define STB_IMAGE_IMPLEMENTATION
#include "preprocess.hpp"
#include "support/run_program.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

std::string data_path(const std::string& name) { return std::string(SKNET_TEST_DATA_DIR) + "/classify/" + name; }

/// How two equally sized 8-bit images differ.
struct ByteDiff {
  std::size_t differing = 0, total = 0;
  int max_abs = 0;
  double mean_abs = 0;
};

ByteDiff byte_diff(const classify::Image& a, const classify::Image& b) {
  ByteDiff d;
  d.total = a.pixels.size();
  double sum = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.differing += diff != 0;
    d.max_abs = std::max(d.max_abs, diff);
    sum += diff;
  }
  d.mean_abs = d.total ? sum / double(d.total) : 0.0;
  return d;
}

/// The golden [3, H, W] tensor as NHWC values.
std::vector<float> golden_nhwc(const std::string& name, int& size) {
  const auto t = sknet::io::read_npy<float>(data_path(name + "_input.npy"));
  REQUIRE(t.shape.size() == 3);
  REQUIRE(t.shape[0] == 3);
  REQUIRE(t.shape[1] == t.shape[2]);
  size = static_cast<int>(t.shape[1]);
  const std::size_t plane = std::size_t(size) * size;
  std::vector<float> out(t.values.size());
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < plane; ++i) out[i * 3 + c] = t.values[c * plane + i];
  return out;
}

}  // namespace

TEST_CASE("classify preprocessing reproduces torchvision's Resize(256, BICUBIC) on PIL byte for byte", "[classify]") {
  const std::string name = GENERATE(std::string("landscape"), std::string("portrait"));
  INFO(name);
  const classify::Image image = classify::decode_image(data_path(name + ".png"));
  const classify::Image expected = classify::decode_image(data_path(name + "_resized.png"));
  const classify::Image resized = classify::resize_shorter_side(image, 256);
  REQUIRE(resized.width == expected.width);
  REQUIRE(resized.height == expected.height);
  REQUIRE(resized.channels == 3);
  const ByteDiff d = byte_diff(resized, expected);
  INFO(d.differing << " of " << d.total << " bytes differ, max " << d.max_abs);
  CHECK(d.differing == 0);  // the arithmetic is Pillow's: exact, not approximately equal
}

TEST_CASE("classify eval transform matches torchvision's CenterCrop + ToTensor + Normalize", "[classify]") {
  const std::string name = GENERATE(std::string("landscape"), std::string("portrait"));
  INFO(name);
  int size = 0;
  const std::vector<float> expected = golden_nhwc(name, size);
  REQUIRE(size == 224);
  const std::vector<float> got = classify::eval_transform(classify::decode_image(data_path(name + ".png")));
  REQUIRE(got.size() == expected.size());
  double worst = 0;
  std::size_t exact = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(double(got[i]) - double(expected[i])));
    exact += got[i] == expected[i];
  }
  INFO("max |diff| " << worst << ", " << exact << " of " << got.size() << " values bit-equal");
  CHECK(worst <= 1e-6);
}

TEST_CASE("classify output size and crop offsets follow torchvision's rounding", "[classify]") {
  using Size = std::array<int, 2>;
  CHECK(classify::resized_size(320, 240, 256) == Size{341, 256});  // int(341.33)
  CHECK(classify::resized_size(200, 287, 256) == Size{256, 367});  // int(367.36)
  CHECK(classify::resized_size(256, 256, 256) == Size{256, 256});
  CHECK(classify::resized_size(1000, 3, 256) == Size{85333, 256});
  CHECK(classify::resized_size(3, 7, 256) == Size{256, 597});  // int(597.33)
  // round((extent - crop) / 2) with halves to even: 58.5 -> 58, 71.5 -> 72, 0.5 -> 0, 1.5 -> 2.
  CHECK(classify::half_round_even(117) == 58);
  CHECK(classify::half_round_even(143) == 72);
  CHECK(classify::half_round_even(1) == 0);
  CHECK(classify::half_round_even(3) == 2);
  CHECK(classify::half_round_even(4) == 2);

  // A crop larger than the image pads with zeros: left (crop - extent) // 2, right the rest.
  classify::Image small(3, 2, 1);
  for (std::size_t i = 0; i < small.pixels.size(); ++i) small.pixels[i] = static_cast<std::uint8_t>(10 + i);
  const classify::Image padded = classify::center_crop(small, 6, 5);
  REQUIRE(padded.width == 6);
  REQUIRE(padded.height == 5);
  // left padding (6 - 3) // 2 = 1, top (5 - 2) // 2 = 1.
  const std::vector<std::uint8_t> want{0, 0,  0,  0,  0, 0,  //
                                       0, 10, 11, 12, 0, 0,  //
                                       0, 13, 14, 15, 0, 0,  //
                                       0, 0,  0,  0,  0, 0,  //
                                       0, 0,  0,  0,  0, 0};
  CHECK(padded.pixels == want);
  // Same size: resize is a copy.
  CHECK(classify::resize_bicubic(small, 3, 2).pixels == small.pixels);
}

TEST_CASE("classify decodes JPEG with stb_image within a few levels of PIL (libjpeg)", "[classify]") {
  // stb_image's IDCT, chroma upsampling and YCbCr conversion are not libjpeg-turbo's, so the
  // decoded pixels (and so the resized ones) differ slightly. Measured on this fixture (quality
  // 90, 4:2:0) against Pillow 9.4 on Debian's libjpeg62-turbo: 7.3% of the bytes differ, by at
  // most 3 levels, 0.08 level on average. Bounds: max 6 levels, mean 0.25 level.
  const classify::Image image = classify::decode_image(data_path("landscape_q90.jpg"));
  const classify::Image expected = classify::decode_image(data_path("landscape_q90_resized.png"));
  const classify::Image resized = classify::resize_shorter_side(image, 256);
  REQUIRE(resized.width == expected.width);
  REQUIRE(resized.height == expected.height);
  const ByteDiff d = byte_diff(resized, expected);
  INFO(d.differing << " of " << d.total << " bytes differ, max " << d.max_abs << ", mean " << d.mean_abs);
  CHECK(d.max_abs <= 6);
  CHECK(d.mean_abs <= 0.25);
}

TEST_CASE("classify reports unreadable images by name", "[classify][errors]") {
  const fs::path dir = fs::temp_directory_path() / ("sknet_classify_decode_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string missing = (dir / "missing.png").string();
  CHECK_THROWS_WITH(classify::decode_image(missing), Catch::Contains(missing) && Catch::Contains("cannot open"));
  const std::string garbage = (dir / "garbage.png").string();
  std::ofstream(garbage) << "this is not a PNG file";
  CHECK_THROWS_WITH(classify::decode_image(garbage), Catch::Contains(garbage) && Catch::Contains("cannot decode"));
  // A PNG cut in half.
  std::ifstream in(data_path("landscape.png"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = (dir / "truncated.png").string();
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  CHECK_THROWS_WITH(classify::decode_image(truncated), Catch::Contains(truncated));
  fs::remove_all(dir);
}

// ---- the program end to end --------------------------------------------------------------------

namespace {

using Result = sknet_test::ProgramResult;

Result run_classify(const std::string& args) { return sknet_test::run_program(SKNET_CLASSIFY, args); }

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

/// A work folder holding a random full-width SKNet-26 checkpoint (1000 classes, timm names) whose
/// fc layer is scaled so the softmax of the fixture images is spread over several classes.
struct Checkpoint {
  fs::path dir;
  std::string path;
  sknet::SKNetConfig config;

  Checkpoint() {
    dir = fs::temp_directory_path() / ("sknet_classify_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    path = (dir / "sknet26_random.safetensors").string();
    config.layers = sknet::sknet_depths("sknet26");
    sknet::SKNet<float, 2> net(config);
    sknet::randomize<float>(net, 2019);
    sknet::StateDict<float> dict = sknet::state_dict<float>(net);
    // Scale fc so the logits of the landscape image have a standard deviation of 3.
    const std::vector<float> logits = this->logits(dict, "landscape");
    double mean = 0, var = 0;
    for (float v : logits) mean += v / double(logits.size());
    for (float v : logits) var += (v - mean) * (v - mean) / double(logits.size());
    const float scale = static_cast<float>(3.0 / std::sqrt(var));
    for (const char* key : {"fc.weight", "fc.bias"})
      for (float& v : dict.at(key).values) v *= scale;
    sknet::io::save_safetensors(path, dict);
  }
  ~Checkpoint() { fs::remove_all(dir); }

  /// Logits of the network in `dict` on the golden torchvision input of fixture `name`.
  std::vector<float> logits(sknet::StateDict<float> dict, const std::string& name) const {
    auto net = sknet::prepare_from_state_dict<2>(config, std::move(dict));
    int size = 0;
    const std::vector<float> x = golden_nhwc(name, size);
    const sknet::Tensor2<float> y = net.forward(sknet::ConstTensorMap4<float>(x.data(), 1, size, size, 3));
    return std::vector<float>(y.data(), y.data() + y.size());
  }
};

const Checkpoint& checkpoint() {
  static const Checkpoint c;
  return c;
}

struct Prediction {
  int rank, index;
  double probability;
  std::string name;
};

/// Parses classify's output: per image "PATH (WxH)" then lines "  rank. p  name (index)".
std::vector<std::pair<std::string, std::vector<Prediction>>> parse_output(const std::string& out) {
  std::vector<std::pair<std::string, std::vector<Prediction>>> images;
  const std::regex header(R"(^(\S.*) \((\d+)x(\d+)\)$)");
  const std::regex line(R"(^ *(\d+)\. (\d\.\d{4})  (.+) \((\d+)\)$)");
  std::stringstream ss(out);
  std::string text;
  std::smatch m;
  while (std::getline(ss, text)) {
    if (std::regex_match(text, m, line)) {
      REQUIRE(!images.empty());
      images.back().second.push_back({std::stoi(m[1]), std::stoi(m[4]), std::stod(m[2]), m[3]});
    } else {
      INFO("line: '" << text << "'");
      REQUIRE(std::regex_match(text, m, header));
      images.push_back({m[1], {}});
    }
  }
  return images;
}

std::vector<double> softmax(const std::vector<float>& logits) {
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p;
  double sum = 0;
  for (float v : logits) sum += std::exp(v - top);
  for (float v : logits) p.push_back(std::exp(v - top) / sum);
  return p;
}

}  // namespace

TEST_CASE("classify prints the top K ImageNet classes of each image", "[classify][program]") {
  const Checkpoint& ckpt = checkpoint();
  const std::vector<std::string> labels = read_lines(std::string(SKNET_SOURCE_DIR) +
                                                     "/examples/classify/imagenet_classes.txt");
  REQUIRE(labels.size() == 1000);
  CHECK(labels[0] == "tench");
  CHECK(labels[1] == "goldfish");
  CHECK(labels[999] == "toilet tissue");

  const int k = 4;
  const Result r = run_classify("--weights " + ckpt.path + " --arch sknet26 --threads 1 --top " + std::to_string(k) +
                                " " + data_path("landscape.png") + " " + data_path("portrait.png"));
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  REQUIRE(r.status == 0);
  const auto images = parse_output(r.out);
  REQUIRE(images.size() == 2);
  CHECK(images[0].first == data_path("landscape.png"));
  CHECK(images[1].first == data_path("portrait.png"));
  const auto dict = sknet::io::load_safetensors<float>(ckpt.path);
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto& predictions = images[i].second;
    REQUIRE(predictions.size() == std::size_t(k));
    // The reference: the same network on torchvision's own tensor for this image.
    const std::vector<double> p = softmax(ckpt.logits(dict, i == 0 ? "landscape" : "portrait"));
    const double best = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (int j = 0; j < k; ++j) {
      const Prediction& pr = predictions[j];
      CHECK(pr.rank == j + 1);
      REQUIRE(pr.index >= 0);
      REQUIRE(pr.index < 1000);
      CHECK(pr.name == labels[pr.index]);
      CHECK(std::fabs(pr.probability - p[pr.index]) <= 1e-4);  // 4 decimals printed
      if (j > 0) CHECK(pr.probability <= predictions[j - 1].probability);
      sum += pr.probability;
    }
    CHECK(std::fabs(predictions[0].probability - best) <= 1e-4);
    CHECK(sum <= 1.0 + k * 0.5e-4);  // each printed value is rounded to 4 decimals
    CHECK(predictions[0].probability < 0.9);  // the scaled fc keeps the softmax spread
  }

  // --precision bf16: the same network in bf16 arithmetic, within bf16 rounding of the float32
  // probabilities; int8 needs the calibrated ranges (--scales), and the flags are checked.
  const Result bf16 = run_classify("--weights " + ckpt.path + " --arch sknet26 --threads 1 --top " + std::to_string(k) +
                                   " --precision bf16 " + data_path("landscape.png"));
  INFO("bf16 stderr: " << bf16.err);
  REQUIRE(bf16.status == 0);
  const auto bf16_images = parse_output(bf16.out);
  REQUIRE(bf16_images.size() == 1);
  {
    const std::vector<double> p = softmax(ckpt.logits(dict, "landscape"));
    for (const Prediction& pr : bf16_images[0].second) CHECK(std::fabs(pr.probability - p[pr.index]) <= 2e-2);
  }
  for (const std::string& bad : {std::string("--precision int8"), std::string("--precision fp64"),
                                  std::string("--scales ranges.json")}) {
    const Result e = run_classify("--weights " + ckpt.path + " " + bad + " " + data_path("landscape.png"));
    INFO(bad << ": " << e.err);
    CHECK(e.status == 2);
    CHECK(e.err.find(bad.substr(0, bad.find(' '))) != std::string::npos);
  }

  // --labels: names from the given file; the same classes.
  const std::string custom = (ckpt.dir / "labels.txt").string();
  {
    std::ofstream f(custom);
    for (int i = 0; i < 1000; ++i) f << "label " << i << "\n";
  }
  const Result named = run_classify("--weights " + ckpt.path + " --arch sknet26 --threads 1 --top 2 --labels " +
                                    custom + " " + data_path("landscape.png"));
  INFO("stderr: " << named.err);
  REQUIRE(named.status == 0);
  const auto relabelled = parse_output(named.out);
  REQUIRE(relabelled.size() == 1);
  REQUIRE(relabelled[0].second.size() == 2);
  for (int j = 0; j < 2; ++j) {
    CHECK(relabelled[0].second[j].index == images[0].second[j].index);
    CHECK(relabelled[0].second[j].name == "label " + std::to_string(relabelled[0].second[j].index));
  }
}

TEST_CASE("classify reports bad images, checkpoints and arguments in one line with a non-zero exit",
          "[classify][program][errors]") {
  const Checkpoint& ckpt = checkpoint();
  const std::string image = data_path("landscape.png");
  const auto one_line_error = [](const Result& r, int status, const std::vector<std::string>& needles) {
    INFO("stderr: " << r.err);
    CHECK(r.status == status);
    for (const auto& n : needles) CHECK(r.err.find(n) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.empty());
  };
  const std::string base = "--weights " + ckpt.path + " --arch sknet26 --threads 1 ";

  // Images: missing, not an image, truncated. Nothing is printed for the good image either.
  const std::string missing = (ckpt.dir / "no_such_image.png").string();
  one_line_error(run_classify(base + image + " " + missing), 1, {missing, "cannot open"});
  const std::string garbage = (ckpt.dir / "garbage.jpg").string();
  std::ofstream(garbage) << "not a JPEG";
  one_line_error(run_classify(base + image + " " + garbage), 1, {garbage, "cannot decode"});
  // A damaged body shows only when the image is decoded: the images before it are classified.
  std::ifstream png(image, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
  const std::string truncated = (ckpt.dir / "truncated.png").string();
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const Result cut = run_classify(base + "--top 1 " + image + " " + truncated);
  INFO("stderr: " << cut.err);
  CHECK(cut.status == 1);
  CHECK(cut.err.find(truncated + ": cannot decode") != std::string::npos);
  CHECK(cut.out.find(image + " (320x240)\n  1. ") == 0);
  CHECK(std::count(cut.out.begin(), cut.out.end(), '\n') == 2);

  // Checkpoints: missing, not safetensors, another architecture, not an SKNet.
  const std::string no_weights = (ckpt.dir / "nope.safetensors").string();
  one_line_error(run_classify("--weights " + no_weights + " " + image), 1, {no_weights});
  one_line_error(run_classify("--weights " + garbage + " " + image), 1, {garbage});
  {  // another architecture: the differences one per line, grouped by unit, then what the file holds
    const Result r = run_classify("--weights " + ckpt.path + " --arch sknet50 " + image);
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains(ckpt.path + ": does not fit --arch sknet50:\n"
                                      "  layer1.2, layer2.2-3, layer3.2-5, layer4.2: missing (26 keys each)\n"
                                      "the file holds sknet26 (family sknet: ") &&
                          Catch::Contains("; use --arch sknet26\n"));
  }
  const std::string other = (ckpt.dir / "other.safetensors").string();
  sknet::StateDict<float> dict;
  dict["fc.weight"] = sknet::NamedTensor<float>{{10, 512}, std::vector<float>(5120, 0.0f)};
  dict["features.0.weight"] = sknet::NamedTensor<float>{{4}, std::vector<float>(4, 0.0f)};
  sknet::io::save_safetensors(other, dict);
  one_line_error(run_classify("--weights " + other + " " + image), 1,
                 {other, "not a checkpoint of a network sknet knows", "keys: fc.weight, features.0.weight"});
  {
    const Result r = run_classify("--weights " + other + " --arch sknet26 " + image);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(other + ": does not fit --arch sknet26:\n") &&
                          Catch::Contains("\n  layer1.1, layer2.1, layer3.1, layer4.1: missing (26 keys each)\n") &&
                          Catch::Contains("\n  features.0.weight: not expected\n") &&
                          Catch::Contains("\nthe file fits no network family sknet knows\n"));
  }
  dict.erase("fc.weight");
  sknet::io::save_safetensors(other, dict);
  one_line_error(run_classify("--weights " + other + " --arch sknet26 " + image), 1, {other, "'fc.weight'"});

  // Labels that do not fit the checkpoint.
  const std::string short_labels = (ckpt.dir / "short_labels.txt").string();
  std::ofstream(short_labels) << "tench\ngoldfish\n";
  one_line_error(run_classify(base + "--labels " + short_labels + " " + image), 1,
                 {short_labels, "expected 1000 class names", "got 2"});

  // Usage errors: exit 2.
  one_line_error(run_classify("--weights " + ckpt.path), 2, {"no image given"});
  one_line_error(run_classify(image), 2, {"missing required option '--weights'"});
  one_line_error(run_classify(base + "--arch resnet50 " + image), 2, {"sknet26, sknet50, sknet101, skresnet18"});
  one_line_error(run_classify(base + "--crop-pct 1.5 " + image), 2, {"--crop-pct", "(0, 1]"});
  one_line_error(run_classify(base + "--top 0 " + image), 2, {"--top"});
  one_line_error(run_classify(base + "--bogus 1 " + image), 2, {"unknown option '--bogus'"});
}

TEST_CASE("classify runs any family through the inferring loader (timm's skresnet18 layout)", "[classify][program]") {
  // The reduced skresnet18 of tests/data/families (10 classes, basic blocks, split-input SK).
  const std::string weights = std::string(SKNET_TEST_DATA_DIR) + "/families/skresnet18_tiny.safetensors";
  const Result r = run_classify("--weights " + weights + " --threads 1 --top 3 " + data_path("landscape.png"));
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("holds a custom skresnet (family skresnet: basic blocks"));
  const auto images = parse_output(r.out);
  REQUIRE(images.size() == 1);
  REQUIRE(images[0].second.size() == 3);
  // The reference: the same weights in the reference network on torchvision's tensor of the image
  // (crop_pct 0.875, timm's for skresnet18).
  const sknet::io::SafetensorsLayout header = sknet::io::read_safetensors_header(weights);
  const sknet::NetworkPlan plan = sknet::infer_network(sknet::io::tensor_shapes(header), weights, header.metadata).plan();
  sknet::Network<float, 2> net(plan);
  sknet::load_state_dict(net, sknet::io::load_safetensors<float>(weights));
  const auto t = sknet::io::read_npy<float>(data_path("landscape_input.npy"));  // [3, 224, 224]
  REQUIRE(t.shape.size() == 3);
  const sknet::ConstTensorMap4<float> nchw(t.values.data(), 1, t.shape[0], t.shape[1], t.shape[2]);
  const sknet::Tensor2<float> logits = net.forward_nchw(nchw);
  const std::vector<double> p = softmax(std::vector<float>(logits.data(), logits.data() + logits.size()));
  for (const Prediction& pr : images[0].second) {
    CHECK(pr.name == "class " + std::to_string(pr.index));
    CHECK(std::fabs(pr.probability - p[std::size_t(pr.index)]) <= 2e-4);
  }
  CHECK(images[0].second[0].index == int(std::max_element(p.begin(), p.end()) - p.begin()));
}
