// The `sknet` command end to end: info, run on a timm-named checkpoint, bench, and bad input.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "support/compare.hpp"
#include "support/run_program.hpp"
#include "support/safetensors_fixture.hpp"

namespace fs = std::filesystem;

namespace {

using Result = sknet_test::ProgramResult;

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
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    err = std::max(err, std::fabs(double(logits.values[i]) - expected.values[i]));
    scale = std::max(scale, std::fabs(double(expected.values[i])));
  }
  CHECK(err / scale <= 1e-4);
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
  one_line_error(run_cli("info --arch sknet34"), "sknet26, sknet50 or sknet101");
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
  // Wrong architecture for the checkpoint: every mismatch listed, on one line.
  one_line_error(run_cli("run --arch sknet26 --weights " + base + ".safetensors --input " + base +
                         ".input.npy --output " + (work / "y.npy").string()),
                 "shape mismatch");
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
