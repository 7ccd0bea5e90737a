// The `sknet` command end to end: info, run on a timm-named checkpoint, bench, and bad input.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "support/compare.hpp"
#include "support/network_fixture.hpp"
#include "support/run_program.hpp"
#include "support/safetensors_fixture.hpp"
#include "support/sanitizers.hpp"

namespace fs = std::filesystem;

namespace {

using Result = sknet_test::ProgramResult;
using Catch::Matchers::Contains;

/// Runs `sknet <args>` and captures exit status, stdout and stderr.
Result run_cli(const std::string& args) { return sknet_test::run_program(SKNET_CLI, args); }

const std::string kTinyFlags =
    "--arch sknet26 --planes 4,8,16,32 --base-width 32 --groups 4 --reduction 4 --min-width 8 --stem-width 8";

}  // namespace

TEST_CASE("sknet info prints the SKNet-50 totals", "[cli]") {
  const Result r = run_cli("info --arch sknet50");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("\nparams: 27479784\nmacs: ") != std::string::npos);
  CHECK(r.out.find("layer4.2.conv2") != std::string::npos);
  const Result r101 = run_cli("info --arch sknet101 --size 256 --classes 10");
  REQUIRE(r101.status == 0);
  CHECK(r101.out.find("layer3.22.conv3") != std::string::npos);
}

TEST_CASE("sknet info sizes the CIFAR networks for 32x32 images and 100 classes", "[cli]") {
  const Result r = run_cli("info --arch sknet29");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("\nparams: 28348644\nmacs: 4031500288\n") != std::string::npos);
  const Result r10 = run_cli("info --arch resnext29 --classes 10 --size 64");
  REQUIRE(r10.status == 0);
  // 100 -> 10 classes: 92,250 fewer fc values; 64x64: 4x the convolutions' multiply-adds
  CHECK(r10.out.find("\nparams: 25136970\nmacs: 16113215488\n") != std::string::npos);
}

TEST_CASE("sknet info prints the SK-ShuffleNetV2 1.0x totals", "[cli][shufflenet]") {
  const Result r = run_cli("info --arch sk_shufflenetv2");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("\nparams: 2503044\nmacs: 148791672\n") != std::string::npos);
  CHECK(r.out.find("stage4.3.branch2.3") != std::string::npos);
  CHECK(r.out.find("conv5") != std::string::npos);
}

TEST_CASE("sknet run reproduces PyTorch's logits and attention from a timm-named checkpoint", "[cli][fixture]") {
  const std::string name = GENERATE(std::string("tiny_m2"), std::string("tiny_m3"));
  const int paths = name == "tiny_m3" ? 3 : 2;
  const std::string base = sknet_test::test_data_path("sknet/" + name);
  const fs::path work = fs::temp_directory_path() / ("sknet_cli_" + name + "_" + std::to_string(::getpid()));
  const std::string threads = GENERATE(std::string("1"), std::string("2"));
  const std::string kernels = GENERATE(std::string("fast"), std::string("reference"));
  fs::remove_all(work);
  fs::create_directories(work);
  const Result r = run_cli("run " + kTinyFlags + " --paths " + std::to_string(paths) + " --weights " + base +
                           ".safetensors --input " + base + ".input.npy --output " + (work / "y.npy").string() +
                           " --attention-dir " + (work / "attention").string() + " --threads " + threads + " --kernels " + kernels);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto logits = sknet::io::read_npy<float>((work / "y.npy").string());
  const auto expected = sknet::io::read_npy<float>(base + ".logits.npy");
  REQUIRE(logits.shape == expected.shape);
  CHECK(sknet_test::relative_linf(logits.values.data(), expected) <= 1e-4);
  const auto attention = sknet::io::load_safetensors<float>(base + ".attention.safetensors");
  for (const auto& [unit, want] : attention) {
    const auto got = sknet::io::read_npy<float>((work / "attention" / (unit + ".npy")).string());
    REQUIRE(got.shape == want.shape);
    SKNET_CHECK_CLOSE(got.values, want.values, (sknet_test::Tolerance{1e-5, 0.0}), unit);
  }
  fs::remove_all(work);
}

TEST_CASE("sknet bench prints per-rep times and the median", "[cli]") {
  const Result r = run_cli("bench " + kTinyFlags + " --classes 10 --size 40 --batch 2 --reps 3 --threads 2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("rep 3: ") != std::string::npos);
  CHECK(r.out.find("median_ms: ") != std::string::npos);
}

TEST_CASE("sknet --precision bf16 runs the bf16 engine and says which kernels", "[cli][bf16]") {
  const Result bench = run_cli("bench " + kTinyFlags + " --classes 10 --size 40 --reps 1 --precision bf16");
  INFO(bench.err);
  REQUIRE(bench.status == 0);
  CHECK(bench.out.find("precision bf16 (1x1: pointwise_bf16__") != std::string::npos);
  CHECK(bench.out.find(", SK branches: grouped_conv3x3_sk_bf16__") != std::string::npos);
  const Result info = run_cli("info --arch sknet26");
  CHECK(info.out.find("bf16 1x1 kernel: pointwise_bf16__") != std::string::npos);
  CHECK(info.out.find("bf16 SK branch kernel: grouped_conv3x3_sk_bf16__") != std::string::npos);
  CHECK(info.out.find("int8 1x1 kernel: pointwise_int8__") != std::string::npos);
  CHECK(info.out.find("int8 SK branch kernel: grouped_conv3x3_sk_int8__") != std::string::npos);
  // The PyTorch fixture through the bf16 engine: within bf16 rounding of the float32 logits.
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path out = fs::temp_directory_path() / ("sknet_cli_bf16_" + std::to_string(::getpid()) + ".npy");
  const Result r = run_cli("run " + kTinyFlags + " --paths 2 --weights " + base + ".safetensors --input " + base +
                           ".input.npy --output " + out.string() + " --precision bf16 --threads 2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto logits = sknet::io::read_npy<float>(out.string());
  const auto expected = sknet::io::read_npy<float>(base + ".logits.npy");
  REQUIRE(logits.shape == expected.shape);
  const double rel = sknet_test::relative_linf(logits.values.data(), expected.values.data(), expected.values.size());
  INFO("bf16 logits error / max |logit| = " << rel);
  CHECK(rel <= 2e-2);
  CHECK(rel > 0.0);
  fs::remove(out);
  // Usage errors: an unknown precision, bf16 on the reference kernels.
  CHECK(run_cli("bench " + kTinyFlags + " --size 40 --reps 1 --precision fp16").status == 2);
  const Result ref = run_cli("run " + kTinyFlags + " --paths 2 --weights " + base + ".safetensors --input " + base +
                             ".input.npy --output " + out.string() + " --precision bf16 --kernels reference");
  CHECK(ref.status == 2);
  CHECK(ref.err.find("--precision") != std::string::npos);
  CHECK(!fs::exists(out));
}

TEST_CASE("sknet calibrate, then run --precision int8 --scales; bench --precision int8", "[cli][int8]") {
  const Result bench = run_cli("bench " + kTinyFlags + " --classes 10 --size 40 --reps 1 --precision int8");
  INFO(bench.err);
  REQUIRE(bench.status == 0);
  CHECK(bench.out.find("precision int8 (1x1: pointwise_int8__") != std::string::npos);

  // The PyTorch fixture: calibrated on its own input (a directory of one .npy), then run in int8:
  // within the int8 networks' tolerance of the float32 logits (tests/test_prepared_int8.cpp).
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path work = fs::temp_directory_path() / ("sknet_cli_int8_" + std::to_string(::getpid()));
  fs::create_directories(work / "inputs");
  fs::copy_file(base + ".input.npy", work / "inputs" / "a.npy");
  const std::string weights = " --weights " + base + ".safetensors";
  const Result cal = run_cli("calibrate" + weights + " --inputs " + (work / "inputs").string() + " --output " +
                             (work / "r.json").string());
  INFO(cal.err);
  REQUIRE(cal.status == 0);
  CHECK(cal.err.find("activation ranges on ") != std::string::npos);
  const Result r = run_cli("run" + weights + " --input " + base + ".input.npy --output " + (work / "y.npy").string() +
                           " --precision int8 --scales " + (work / "r.json").string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto logits = sknet::io::read_npy<float>((work / "y.npy").string());
  const auto expected = sknet::io::read_npy<float>(base + ".logits.npy");
  REQUIRE(logits.shape == expected.shape);
  const double rel = sknet_test::relative_linf(logits.values.data(), expected.values.data(), expected.values.size());
  INFO("int8 logits error / max |logit| = " << rel);
  CHECK(rel <= 4e-2);
  CHECK(rel > 0.0);

  // int8 needs --scales; --scales needs int8; a malformed ranges file and calibration inputs of the
  // wrong shape are named.
  const std::string run = "run" + weights + " --input " + base + ".input.npy --output " + (work / "z.npy").string();
  const Result no_scales = run_cli(run + " --precision int8");
  CHECK(no_scales.status == 2);
  CHECK(no_scales.err.find("--scales") != std::string::npos);
  CHECK(run_cli(run + " --scales " + (work / "r.json").string()).status == 2);
  std::ofstream(work / "bad.json") << "{\"format\": 1}";
  const Result bad = run_cli(run + " --precision int8 --scales " + (work / "bad.json").string());
  CHECK(bad.status == 1);
  CHECK(bad.err.find("bad.json") != std::string::npos);
  CHECK(!fs::exists(work / "z.npy"));
  const Result wrong = run_cli("calibrate" + weights + " --inputs " + base + ".logits.npy --output " +
                               (work / "r2.json").string());
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("logits.npy") != std::string::npos);
  CHECK(!fs::exists(work / "r2.json"));
  fs::remove_all(work);
}

TEST_CASE("sknet reports bad arguments and bad files in one line with a non-zero exit", "[cli][errors]") {
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path work = fs::temp_directory_path() / "sknet_cli_errors";
  fs::create_directories(work);
  const auto one_line_error = [](const Result& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.status != 0);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.empty());
  };
  one_line_error(run_cli("info --arch sknet34"), "sknet26, sknet50, sknet101, skresnet18");
  one_line_error(run_cli("info --arch resnext34"), "resnext101, seresnext50");
  one_line_error(run_cli("info --arch resnext34"), "got 'resnext34'");
  one_line_error(run_cli("info --arch sknet50 --paths 0"), "--paths");
  one_line_error(run_cli("info --arch sknet50 --groups x"), "expected an integer");
  one_line_error(run_cli("info --arch sknet50 --bogus 1"), "unknown option '--bogus'");
  one_line_error(run_cli("frobnicate"), "unknown command");
  one_line_error(run_cli("run --arch sknet26 --weights w --input x --output y --kernels turbo"),
                 "expected fast or reference");
  one_line_error(run_cli("run --arch sknet26 --input x.npy --output y.npy"), "missing required option '--weights'");
  one_line_error(run_cli("run " + kTinyFlags + " --weights " + (work / "nope.safetensors").string() + " --input " +
                         base + ".input.npy --output " + (work / "y.npy").string()),
                 "nope.safetensors");
  // Wrong architecture for the checkpoint: the differences one per line, then what the file holds.
  {
    const Result r = run_cli("run --arch sknet26 --weights " + base + ".safetensors --input " + base +
                             ".input.npy --output " + (work / "y.npy").string());
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains("does not fit --arch sknet26:\n  bn1.bias: [8] in the file, [64] expected\n"));
    CHECK_THAT(r.err, Contains("\n  ... and ") && Contains("more keys with another shape\n"));
    CHECK_THAT(r.err, Contains("the file holds a custom sknet (family sknet: bottlenecks 2,2,2,2, planes 4,8,16,32") &&
                          Contains("run it without --arch"));
    CHECK_FALSE(fs::exists(work / "y.npy"));
  }
  // Input that is not [N, 3, H, W].
  const std::vector<float> values(2 * 4 * 8 * 8, 0.5f);
  sknet::io::write_npy<float>((work / "four_channels.npy").string(), {2, 4, 8, 8}, values.data());
  one_line_error(run_cli("run " + kTinyFlags + " --weights " + base + ".safetensors --input " +
                         (work / "four_channels.npy").string() + " --output " + (work / "y.npy").string()),
                 "expected 3, got 4");
  sknet::io::write_npy<float>((work / "rank3.npy").string(), {4, 8, 8}, values.data());
  one_line_error(run_cli("run " + kTinyFlags + " --weights " + base + ".safetensors --input " +
                         (work / "rank3.npy").string() + " --output " + (work / "y.npy").string()),
                 "input rank");
  fs::remove_all(work);
}

namespace {

/// status, exactly one line on stderr starting "sknet: " and containing `needle`, nothing on stdout.
void check_one_line(const Result& r, int status, const std::string& needle) {
  INFO("status " << r.status << ", stderr: " << r.err << "stdout: " << r.out.substr(0, 200));
  CHECK(r.status == status);
  CHECK(r.err.rfind("sknet: ", 0) == 0);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.out.empty());
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("sknet_cli_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// The files below `dir`, relative, sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) names.push_back(fs::relative(e.path(), dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("sknet with no arguments prints the usage on stderr", "[cli][errors]") {
  const Result r = run_cli("");
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("usage: sknet info", 0) == 0);
  CHECK(r.err.find("--threads 1..256") != std::string::npos);
  const Result help = run_cli("--help");
  CHECK(help.status == 0);
  CHECK(help.out.rfind("usage: sknet info", 0) == 0);
  CHECK(help.err.empty());
}

TEST_CASE("sknet range-checks integer options as usage errors", "[cli][errors]") {
  const std::string bench = "bench " + kTinyFlags + " --size 32 --reps 1 --threads ";
  // 4294967297 used to wrap to 1 thread, 2147483648 to a negative count with exit 1.
  check_one_line(run_cli(bench + "4294967297"), 2, "option '--threads': expected an integer in 1..256, got 4294967297");
  check_one_line(run_cli(bench + "2147483648"), 2, "expected an integer in 1..256, got 2147483648");
  check_one_line(run_cli(bench + "257"), 2, "in 1..256");
  check_one_line(run_cli(bench + "0"), 2, "in 1..256");
  check_one_line(run_cli(bench + "99999999999999999999"), 2, "integer out of range");
  check_one_line(run_cli(bench + "' 2'"), 2, "expected an integer, got ' 2'");
  check_one_line(run_cli(bench + "2x"), 2, "expected an integer, got '2x'");
  check_one_line(run_cli("info --arch sknet50 --planes 64,128,99999999999999999999,512"), 2, "integer out of range");
  check_one_line(run_cli("bench " + kTinyFlags + " --size 8193"), 2, "'--size': expected an integer in 1..8192");
  check_one_line(run_cli("bench " + kTinyFlags + " --size 8192 --batch 64"), 2, "exceeds the limit of 2^30");
  check_one_line(run_cli("run --arch sknet26 --weights w --input x --output y --threads 300"), 2, "in 1..256");
}

TEST_CASE("sknet info never overflows and never allocates the weights", "[cli][errors]") {
  // The multiply-adds at 10^9 x 10^9 exceed 64 bits (printed as a wrapped count before).
  check_one_line(run_cli("info --arch sknet50 --size 1000000000"), 1, "multiply-adds overflows");
  // 4 * (2^62 + 64) wrapped to 256: accepted as planes 64 before.
  check_one_line(run_cli("info --arch sknet50 --planes 4611686018427387968,128,256,512"), 1, "overflows");
  // 5.1 G parameters (20 GB of weights): info counts them from the shapes alone...
  const Result big = run_cli("info --arch sknet50 --classes 2500000");
  INFO(big.err);
  REQUIRE(big.status == 0);
  CHECK(big.out.find("\nparams: 5147930784\nmacs: ") != std::string::npos);
  // ... and building such a network is refused with a message, not a bare bad_alloc.
  check_one_line(run_cli("bench --arch sknet50 --classes 2500000 --size 32 --reps 1"), 1,
                 "learnable parameters (at most 2^31, 8 GiB of float32): expected <= 2147483648, got 5147930784");
}

TEST_CASE("sknet run checks the input's shape before reading or allocating", "[cli][errors]") {
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path work = fresh_dir("input_checks");
  const std::string run =
      "run " + kTinyFlags + " --weights " + base + ".safetensors --output " + (work / "y.npy").string();
  // Batch 0 with a 10^8-pixel width: a 128-byte file that made the fast path allocate gigabytes.
  sknet::io::write_npy<float>((work / "empty.npy").string(), {0, 3, 1, 100000000}, nullptr);
  CHECK(fs::file_size(work / "empty.npy") == 128);
  check_one_line(run_cli(run + " --input " + (work / "empty.npy").string()), 1,
                 "batch size (dimension 0 of [0, 3, 1, 100000000]): expected >= 1, got 0");
  const std::vector<float> wide(3 * 9000, 0.25f);
  sknet::io::write_npy<float>((work / "wide.npy").string(), {1, 3, 1, 9000}, wide.data());
  check_one_line(run_cli(run + " --input " + (work / "wide.npy").string()), 1,
                 "input width (dimension 3 of [1, 3, 1, 9000]): expected 1..8192, got 9000");
  CHECK(!fs::exists(work / "y.npy"));
  fs::remove_all(work);
}

TEST_CASE("sknet run refuses FIFOs and devices as inputs instead of blocking", "[cli][errors]") {
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path work = fresh_dir("fifo");
  const std::string fifo = (work / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string out = " --output " + (work / "y.npy").string();
  // A FIFO blocked forever in open() before: the time limit turns a regression into a failure.
  const Result as_input = sknet_test::run_program(
      SKNET_CLI, "run " + kTinyFlags + " --weights " + base + ".safetensors --input " + fifo + out, 60);
  check_one_line(as_input, 1, fifo + ": expected a regular file, got a FIFO");
  const Result as_weights = sknet_test::run_program(
      SKNET_CLI, "run " + kTinyFlags + " --weights " + fifo + " --input " + base + ".input.npy" + out, 60);
  check_one_line(as_weights, 1, fifo + ": expected a regular file, got a FIFO");
  // /dev/zero was read until memory ran out.
  check_one_line(sknet_test::run_program(SKNET_CLI,
                                         "run " + kTinyFlags + " --weights " + base +
                                             ".safetensors --input /dev/zero" + out,
                                         60),
                 1, "/dev/zero: expected a regular file, got a character device");
  check_one_line(run_cli("run " + kTinyFlags + " --weights " + work.string() + " --input " + base + ".input.npy" + out),
                 1, "got a directory");
  CHECK(!fs::exists(work / "y.npy"));
  fs::remove_all(work);
}

TEST_CASE("sknet run writes all of its outputs or none", "[cli][errors]") {
  const std::string base = sknet_test::test_data_path("sknet/tiny_m2");
  const fs::path work = fresh_dir("outputs");
  const std::string run = "run " + kTinyFlags + " --weights " + base + ".safetensors --input " + base +
                          ".input.npy --output " + (work / "y.npy").string();
  // --attention-dir names an existing file: checked before any work, and no logits file appears
  // (a complete one was left behind before).
  { std::ofstream((work / "taken").string()) << "x"; }
  check_one_line(run_cli(run + " --attention-dir " + (work / "taken").string()), 1,
                 "option '--attention-dir': '" + (work / "taken").string() + "' exists and is not a directory");
  check_one_line(run_cli(run + " --attention-dir " + (work / "taken" / "sub").string()), 1, "is not a directory");
  CHECK(listing(work) == std::vector<std::string>{"taken"});
  // The output's directory is missing, or the output is a directory.
  check_one_line(run_cli("run " + kTinyFlags + " --weights " + base + ".safetensors --input " + base +
                         ".input.npy --output " + (work / "missing" / "y.npy").string()),
                 1, "does not exist");
  check_one_line(run_cli("run " + kTinyFlags + " --weights " + base + ".safetensors --input " + base +
                         ".input.npy --output " + work.string()),
                 1, "is a directory");
  // A failure while the files are put in place (an attention file's name is taken by a
  // directory): the logits already renamed are removed, and no temporary file remains.
  fs::create_directories(work / "att" / "layer2.0.npy");
  const Result r = run_cli(run + " --attention-dir " + (work / "att").string());
  check_one_line(r, 1, "layer2.0.npy");
  CHECK(listing(work) == std::vector<std::string>{"att", "att/layer2.0.npy", "taken"});
  // A new attention directory (and its missing parents) is created only by a successful run,
  // and removed again when the run fails after creating it.
  fs::remove_all(work / "att");
  const Result ok = run_cli(run + " --attention-dir " + (work / "new" / "att").string());
  INFO(ok.err);
  CHECK(ok.status == 0);
  CHECK(fs::exists(work / "y.npy"));
  CHECK(fs::exists(work / "new" / "att" / "layer4.1.npy"));
  fs::remove_all(work);
}

TEST_CASE("sknet reports a thread that cannot be started in one line", "[cli][errors]") {
  // Under a 700 MB address-space limit 200 threads (8 MiB stacks) cannot all start: the pool
  // deadlocked (fast path) and std::thread aborted (reference path, exit 134) before.
  if (SKNET_TEST_ASAN || SKNET_TEST_TSAN) {
    WARN("skipped: a sanitizer build cannot start under ulimit -v (its shadow memory needs terabytes of address space)");
    return;
  }
  const std::string cli = SKNET_CLI;
  for (const std::string kernels : {"fast", "reference"}) {
    INFO("kernels " << kernels);
    const std::string extra = kernels == "fast" ? " --size 32 --reps 1" : " --size 32 --batch 200 --reps 1";
    const std::string flags = " --kernels " + kernels;
    // 8 MiB thread stacks (the stack limit sets glibc's default), 700 MB of address space.
    const std::string limits = "ulimit -s 8192; ulimit -v 700000; ";
    const Result r = sknet_test::run_program(
        "/bin/sh", "-c '" + limits + "exec \"" + cli + "\" bench " + kTinyFlags + flags + extra + " --threads 200'", 120);
    check_one_line(r, 1, "could not start thread");
    CHECK(r.err.find(" of 200: ") != std::string::npos);
  }
}

// ---- ResNeXt, the paper's baseline ----------------------------------------------------------------

namespace {

/// The flags of tests/data/resnext/<case> (tools/gen_net_fixtures.py).
std::string resnext_flags(const std::string& name) {
  return name == "tiny" ? "--arch resnext26 --layers 2,2,1,1 --planes 4,8,16,32 --base-width 32 --groups 4 --stem-width 8"
                        : "--arch resnext26 --layers 1,1 --planes 4,8 --strides 1,2 --base-width 32 --groups 4 "
                          "--stem-width 8 --stem small";
}

}  // namespace

TEST_CASE("sknet info prints the ResNeXt totals", "[cli][resnext]") {
  const Result r = run_cli("info --arch resnext50");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("\nparams: 25028904\nmacs: ") != std::string::npos);
  CHECK(r.out.find("layer4.2.conv2") != std::string::npos);
  CHECK(r.out.find("\nisa: ") != std::string::npos);
  const Result r101 = run_cli("info --arch resnext101");
  REQUIRE(r101.status == 0);
  CHECK(r101.out.find("layer3.22.conv3") != std::string::npos);
  CHECK(r101.out.find("\nparams: 44177704\n") != std::string::npos);
  const Result r26 = run_cli("info --arch resnext26 --classes 10 --groups 8 --base-width 8 --size 64");
  REQUIRE(r26.status == 0);
  CHECK(r26.out.find("layer1.0.conv2") != std::string::npos);
  CHECK(r26.out.find("layer3.2.") == std::string::npos);  // 2,2,2,2 units
}

TEST_CASE("sknet run reproduces PyTorch's ResNeXt logits", "[cli][fixture][resnext]") {
  const std::string name = GENERATE(std::string("tiny"), std::string("small_stem"));
  const std::string threads = GENERATE(std::string("1"), std::string("2"));
  const std::string kernels = GENERATE(std::string("fast"), std::string("reference"));
  const std::string base = sknet_test::test_data_path("resnext/" + name);
  const fs::path work = fresh_dir("resnext_" + name);
  const Result r = run_cli("run " + resnext_flags(name) + " --weights " + base + ".safetensors --input " + base +
                           ".input.npy --output " + (work / "y.npy").string() + " --threads " + threads +
                           " --kernels " + kernels);
  INFO(name << ", threads " << threads << ", kernels " << kernels << ": " << r.err);
  REQUIRE(r.status == 0);
  const auto logits = sknet::io::read_npy<float>((work / "y.npy").string());
  const auto expected = sknet::io::read_npy<float>(base + ".logits.npy");
  REQUIRE(logits.shape == expected.shape);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    err = std::max(err, std::fabs(double(logits.values[i]) - expected.values[i]));
    scale = std::max(scale, std::fabs(double(expected.values[i])));
  }
  CHECK(err / scale <= 1e-4);
  CHECK(listing(work) == std::vector<std::string>{"y.npy"});  // no attention files
  fs::remove_all(work);
}

TEST_CASE("sknet bench runs a ResNeXt on the prepared engine", "[cli][resnext]") {
  const Result r = run_cli("bench " + resnext_flags("tiny") + " --classes 10 --size 40 --batch 2 --reps 2 --threads 2");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.rfind("arch resnext26, batch 2, 40x40, threads 2, isa ", 0) == 0);
  CHECK(r.out.find("prepared (SIMD kernels)") != std::string::npos);
  CHECK(r.out.find("median_ms: ") != std::string::npos);
}

TEST_CASE("sknet rejects the SK-only options for a ResNeXt", "[cli][resnext][errors]") {
  const std::string base = sknet_test::test_data_path("resnext/tiny");
  const fs::path work = fresh_dir("resnext_flags");
  const std::string run = "run " + resnext_flags("tiny") + " --weights " + base + ".safetensors --input " + base +
                          ".input.npy --output " + (work / "y.npy").string();
  for (const std::string flag : {"--paths 2", "--reduction 16", "--min-width 32", "--branch-kernel dilated"}) {
    const std::string name = flag.substr(0, flag.find(' '));
    const std::string message = "option '" + name + "' does not apply to resnext";
    check_one_line(run_cli("info --arch resnext50 " + flag), 2, message);
    check_one_line(run_cli("bench --arch resnext50 --size 32 --reps 1 " + flag), 2, message);
    check_one_line(run_cli(run + " " + flag), 2, message);
  }
  // No attention to write: checked before any work, nothing is created.
  check_one_line(run_cli(run + " --attention-dir " + (work / "att").string()), 2,
                 "option '--attention-dir' does not apply to resnext26");
  CHECK(listing(work).empty());
  // The same flags still work for the SK networks.
  CHECK(run_cli("info --arch sknet26 --paths 3 --reduction 8 --min-width 16 --branch-kernel full").status == 0);
  fs::remove_all(work);
}

TEST_CASE("sknet run without --arch infers every family from its checkpoint", "[cli][fixture]") {
  const fs::path work = fs::temp_directory_path() / ("sknet_cli_infer_" + std::to_string(::getpid()));
  fs::create_directories(work);
  for (const std::string name : {"skresnet18_tiny", "skresnet34_tiny", "skresnet50_tiny", "skresnet50d_tiny",
                                 "seresnext50_tiny", "sknet101_official_tiny", "sknet29_tiny", "senet29_tiny",
                                 "sk_shufflenetv2_tiny"}) {
    INFO(name);
    const bool shuffle = name.rfind("sk_shufflenetv2", 0) == 0;
    const std::string base = sknet_test::test_data_path((shuffle ? "shufflenet/" : "families/") + name);
    const fs::path out = work / (name + ".npy");
    const Result r = run_cli("run --weights " + base + ".safetensors --input " + base + ".input.npy --output " + out.string());
    INFO(r.err);
    REQUIRE(r.status == 0);
    const std::string family = shuffle                              ? "sk_shufflenetv2"
                               : name.rfind("se", 0) == 0        ? "seresnext"
                               : name.rfind("sknet", 0) == 0     ? "sknet"
                                                                 : "skresnet";
    CHECK_THAT(r.err, Contains("holds a custom " + family + " (family " + family + ": "));
    const sknet::NamedTensor<float> got = sknet::io::read_npy<float>(out.string());
    const sknet::NamedTensor<float> want = sknet::io::read_npy<float>(base + ".logits.npy");
    REQUIRE(got.shape == want.shape);
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < want.values.size(); ++i) {
      err = std::max(err, std::fabs(double(got.values[i]) - double(want.values[i])));
      scale = std::max(scale, std::fabs(double(want.values[i])));
    }
    CHECK(err <= 1e-4 * scale);
    // info --weights: the summary of what the file holds, from its header.
    const Result info = run_cli("info --weights " + base + ".safetensors --size 64");
    REQUIRE(info.status == 0);
    CHECK_THAT(info.out, Contains("params: "));
    // Network flags need --arch.
    const Result flags = run_cli("run --groups 4 --weights " + base + ".safetensors --input " + base +
                                 ".input.npy --output " + out.string());
    CHECK(flags.status == 2);
    CHECK_THAT(flags.err, Contains("option '--groups' needs --arch"));
  }
  fs::remove_all(work);
}

// ---- The SK ablations of the paper's section 4 -----------------------------------------------------

TEST_CASE("sknet info prints the SK ablations' totals (PyTorch's counts)", "[cli][ablations]") {
  // tools/families_torch.py's FamilyNet with the same options, parameters and multiply-adds counted by
  // count_params_macs at 224 x 224.
  const std::vector<std::tuple<std::string, long long, long long>> cases{
      {"--arch sknet50 --path-kernels 3,5 --path-dilations 1,1 --path-groups 32,64 --aggregation sum", 27008808,
       4551606272},
      {"--arch sknet50 --path-kernels 3,5 --path-dilations 1,1", 29994728, 4873752576},
      {"--arch sknet50 --paths 3 --branch-kernel full", 38051816, 6132908032},
      {"--arch sknet50 --aggregation sum", 26458664, 4461690880},
      {"--arch skresnet18 --path-kernels 3,5", 16152360, 2482280448},
  };
  for (const auto& [flags, params, macs] : cases) {
    const Result r = run_cli("info " + flags);
    INFO(flags << "\n" << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("\nparams: " + std::to_string(params) + "\nmacs: " + std::to_string(macs) + "\n") !=
          std::string::npos);
  }
}

TEST_CASE("sknet bench runs the SK ablations on the prepared engine", "[cli][ablations]") {
  for (const std::string flags : {" --path-kernels 3,7 --path-dilations 1,1 --path-groups 4,8", " --aggregation sum",
                                  " --paths 3 --branch-kernel full"}) {
    const Result r = run_cli("bench " + kTinyFlags + flags + " --size 33 --reps 1");
    INFO(flags << "\n" << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("prepared (SIMD kernels)") != std::string::npos);
  }
}

TEST_CASE("sknet refuses SK ablation flags that do not fit, in one line", "[cli][ablations][errors]") {
  check_one_line(run_cli("info --arch sknet50 --path-kernels 3,5,7"), 2, "expected one value per path (M = 2), got 3");
  check_one_line(run_cli("info --arch sknet50 --path-kernels 3,4"), 1, "path 1 kernel size");
  check_one_line(run_cli("info --arch sknet50 --path-groups 32,48"), 1, "groups");
  check_one_line(run_cli("info --arch sknet50 --aggregation max"), 2, "expected attention or sum, got 'max'");
  check_one_line(run_cli("info --arch resnext50 --path-kernels 3,5"), 2, "does not apply to resnext50");
  check_one_line(run_cli("info --arch sknet50 --path-dilations 1,x"), 2, "expected an integer");
}

TEST_CASE("sknet run infers an SK ablation from its checkpoint and reproduces PyTorch", "[cli][ablations][fixture]") {
  for (const std::string name : {"sknet_d3_tiny", "sknet_7x7_g2_tiny", "skresnet_5x5_sum_tiny"}) {
    const std::string base = sknet_test::test_data_path("ablations/" + name);
    const fs::path work = fs::temp_directory_path() / ("sknet_cli_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(work);
    fs::create_directories(work);
    const Result r = run_cli("run --weights " + base + ".safetensors --input " + base + ".input.npy --output " +
                             (work / "y.npy").string() + " --threads 2");
    INFO(name << "\n" << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find(name == "sknet_d3_tiny" ? "path kernels 3,3 dilations 1,3 groups 4,4"
                     : name == "sknet_7x7_g2_tiny" ? "path kernels 3,7 dilations 1,1 groups 4,8"
                                                   : "path kernels 3,5 dilations 1,1 groups 1,1") != std::string::npos);
    const auto logits = sknet::io::read_npy<float>((work / "y.npy").string());
    const auto expected = sknet::io::read_npy<float>(base + ".logits.npy");
    REQUIRE(logits.shape == expected.shape);
    CHECK(sknet_test::relative_linf(logits.values.data(), expected) <= 1e-4);
    fs::remove_all(work);
  }
}
