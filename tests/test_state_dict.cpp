// load_state_dict: strict loading lists every problem; non-strict reports; nothing half-loaded.
#include <catch2/catch.hpp>

#include <sknet/init.hpp>
#include <sknet/sk/sk_conv.hpp>
#include <sknet/state_dict.hpp>

using namespace sknet;

TEST_CASE("state_dict round-trips and strict loading reports everything at once", "[state_dict][errors]") {
  using Catch::Matchers::Contains;
  SKConv<float, 2> a(SKConvOptions(32).groups(8).reduction(4).min_width(4));
  randomize<float>(a, 3);
  StateDict<float> dict = state_dict<float>(a);
  REQUIRE(dict.size() == 16);
  dict["paths.0.bn.num_batches_tracked"] = NamedTensor<float>{{}, {0.0f}};  // accepted and ignored

  SKConv<float, 2> b(SKConvOptions(32).groups(8).reduction(4).min_width(4));
  CHECK(load_state_dict(b, dict).ok());
  CHECK(state_dict<float>(b)["attn.fc_select.weight"].values == dict["attn.fc_select.weight"].values);

  StateDict<float> broken = dict;
  broken.erase("attn.bn.running_var");
  broken.erase("paths.1.conv.weight");
  broken["attn.fc_extra.weight"] = NamedTensor<float>{{1}, {1.0f}};
  broken["paths.0.conv.weight"].shape = {32, 4, 3, 3, 1};  // wrong rank
  broken["attn.fc_reduce.weight"].shape = {8, 32};
  SKConv<float, 2> c(SKConvOptions(32).groups(8).reduction(4).min_width(4));
  try {
    load_state_dict(c, broken);
    FAIL("strict load accepted a broken state dict");
  } catch (const StateDictError& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("2 missing key(s)") && Contains("attn.bn.running_var") &&
                        Contains("paths.1.conv.weight"));
    CHECK_THAT(msg, Contains("1 unexpected key(s)") && Contains("attn.fc_extra.weight"));
    CHECK_THAT(msg, Contains("2 shape mismatch(es)") &&
                        Contains("paths.0.conv.weight: expected [32, 4, 3, 3], found [32, 4, 3, 3, 1]") &&
                        Contains("attn.fc_reduce.weight: expected [8, 32, 1, 1], found [8, 32]"));
  }
  // The failed strict load changed nothing.
  for (const auto& kv : state_dict<float>(c))
    if (kv.first.find("running_var") == std::string::npos && kv.first.find("bn.weight") == std::string::npos)
      for (float v : kv.second.values) CHECK(v == 0.0f);

  const LoadReport report = load_state_dict(c, broken, /*strict=*/false);
  CHECK_FALSE(report.ok());
  CHECK(report.missing.size() == 2);
  CHECK(report.unexpected.size() == 1);
  CHECK(report.mismatched.size() == 2);
  CHECK(state_dict<float>(c)["attn.fc_select.weight"].values == dict["attn.fc_select.weight"].values);

  StateDict<float> short_values = dict;
  short_values["attn.fc_select.weight"].values.pop_back();
  CHECK_THROWS_WITH(load_state_dict(c, short_values), Contains("holding"));
}
