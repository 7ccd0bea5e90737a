// Minimal .safetensors reader for golden test fixtures.
//
// Format: 8-byte little-endian u64 header length N, N bytes of JSON header,
// then the data section. Each header entry (other than "__metadata__") is
//   {"dtype": "F32"|"F64"|"I64", "shape": [...], "data_offsets": [begin, end]}
// with offsets relative to the start of the data section; data is
// little-endian, C-order. All tensors are converted to double.
//
// Independent of the sknet library on purpose.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../reference/naive.hpp"

namespace sknet_test {

struct Fixture {
    std::map<std::string, naive::Array> tensors;
    std::map<std::string, std::string> metadata;
    std::string path;

    bool has(const std::string& key) const { return tensors.count(key) != 0; }

    const naive::Array& tensor(const std::string& key) const {
        auto it = tensors.find(key);
        if (it == tensors.end())
            throw std::runtime_error("fixture '" + path + "': missing tensor '" + key + "'");
        return it->second;
    }

    std::string meta(const std::string& key) const {
        auto it = metadata.find(key);
        if (it == metadata.end())
            throw std::runtime_error("fixture '" + path + "': missing metadata '" + key + "'");
        return it->second;
    }

    int meta_int(const std::string& key) const {
        const std::string v = meta(key);
        try {
            std::size_t used = 0;
            const int r = std::stoi(v, &used);
            if (used != v.size()) throw std::invalid_argument("trailing characters");
            return r;
        } catch (const std::exception&) {
            throw std::runtime_error("fixture '" + path + "': metadata '" + key +
                                     "' is not an integer: '" + v + "'");
        }
    }
};

namespace detail {

inline bool host_is_little_endian() {
    const std::uint32_t one = 1;
    unsigned char b = 0;
    std::memcpy(&b, &one, 1);
    return b == 1;
}

// Read an N-byte little-endian value from p into T (memcpy, no alignment assumed).
template <class T>
T read_le(const unsigned char* p) {
    unsigned char buf[sizeof(T)];
    if (host_is_little_endian()) {
        std::memcpy(buf, p, sizeof(T));
    } else {
        for (std::size_t i = 0; i < sizeof(T); ++i) buf[i] = p[sizeof(T) - 1 - i];
    }
    T v;
    std::memcpy(&v, buf, sizeof(T));
    return v;
}

}  // namespace detail

inline Fixture load_fixture(const std::string& path) {
    auto fail = [&](const std::string& why) -> std::runtime_error {
        return std::runtime_error("fixture '" + path + "': " + why);
    };

    std::ifstream f(path, std::ios::binary);
    if (!f) throw fail("cannot open file");
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)),
                                           std::istreambuf_iterator<char>());
    if (bytes.size() < 8) throw fail("file too short for header length");
    const std::uint64_t header_len = detail::read_le<std::uint64_t>(bytes.data());
    if (header_len > bytes.size() - 8) throw fail("header length exceeds file size");
    const std::size_t data_start = 8 + static_cast<std::size_t>(header_len);
    const std::size_t data_size = bytes.size() - data_start;

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + data_start);
    } catch (const std::exception& e) {
        throw fail(std::string("invalid JSON header: ") + e.what());
    }
    if (!header.is_object()) throw fail("header is not a JSON object");

    Fixture fx;
    fx.path = path;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& key = it.key();
        const nlohmann::json& v = it.value();
        if (key == "__metadata__") {
            if (!v.is_object()) throw fail("__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string()) throw fail("metadata '" + m.key() + "' is not a string");
                fx.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        try {
            if (!v.is_object()) throw fail("entry '" + key + "' is not an object");
            const std::string dtype = v.at("dtype").get<std::string>();
            std::size_t elem = 0;
            if (dtype == "F32") elem = 4;
            else if (dtype == "F64" || dtype == "I64") elem = 8;
            else throw fail("tensor '" + key + "': unsupported dtype '" + dtype + "'");

            std::vector<std::int64_t> shape;
            for (const auto& d : v.at("shape")) {
                const std::int64_t di = d.get<std::int64_t>();
                if (di < 0) throw fail("tensor '" + key + "': negative dimension");
                shape.push_back(di);
            }
            const auto& offs = v.at("data_offsets");
            if (!offs.is_array() || offs.size() != 2)
                throw fail("tensor '" + key + "': data_offsets must have 2 entries");
            const std::uint64_t begin = offs[0].get<std::uint64_t>();
            const std::uint64_t end = offs[1].get<std::uint64_t>();
            if (begin > end || end > data_size)
                throw fail("tensor '" + key + "': data_offsets out of range");

            naive::Array a(shape);
            const std::uint64_t expected = static_cast<std::uint64_t>(a.numel()) * elem;
            if (end - begin != expected)
                throw fail("tensor '" + key + "': byte count " + std::to_string(end - begin) +
                           " != numel * element size " + std::to_string(expected));
            const unsigned char* p = bytes.data() + data_start + begin;
            for (std::size_t i = 0; i < a.data.size(); ++i, p += elem) {
                if (dtype == "F32") a.data[i] = static_cast<double>(detail::read_le<float>(p));
                else if (dtype == "F64") a.data[i] = detail::read_le<double>(p);
                else a.data[i] = static_cast<double>(detail::read_le<std::int64_t>(p));
            }
            fx.tensors[key] = std::move(a);
        } catch (const nlohmann::json::exception& e) {
            throw fail("tensor '" + key + "': malformed entry: " + e.what());
        }
    }
    return fx;
}

// Sorted paths of all *.safetensors files directly inside `directory`.
inline std::vector<std::string> list_fixtures(const std::string& directory) {
    namespace fs = std::filesystem;
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::is_directory(directory, ec)) return out;
    for (const auto& entry : fs::directory_iterator(directory)) {
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
            out.push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Path of a file under the test data root. The test executables get the root
// through the compile definition SKNET_TEST_DATA_DIR (a string literal), e.g.
//   target_compile_definitions(<test> PRIVATE
//       SKNET_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
// Without it, this header still compiles (so tests that do not need data can
// include it), but any call to test_data_path() is a compile error.
#ifdef SKNET_TEST_DATA_DIR
inline std::string test_data_path(const std::string& rel) {
    return (std::filesystem::path(SKNET_TEST_DATA_DIR) / rel).string();
}
#else
namespace detail {
template <class>
inline constexpr bool missing_data_dir = false;
}  // namespace detail
template <class Dummy = void>
std::string test_data_path(const std::string&) {
    static_assert(detail::missing_data_dir<Dummy>,
                  "SKNET_TEST_DATA_DIR is not defined: add "
                  "target_compile_definitions(<test> PRIVATE SKNET_TEST_DATA_DIR=\"<dir>\")");
    return {};
}
#endif

}  // namespace sknet_test
