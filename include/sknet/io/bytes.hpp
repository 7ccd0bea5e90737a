// sknet: the byte and file helpers shared by the file readers and writers (.npy, safetensors).
//
// Little-endian loads and stores, overflow-checked size arithmetic, printable excerpts of bytes
// for error messages, an input file that refuses anything but a regular file (a FIFO, a device
// such as /dev/zero or a directory would block or never end) and reads only the ranges it is
// asked for, and an output file written under a temporary name and renamed into place, so a
// failed write never leaves a partial file behind. POSIX only. No JSON here.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sknet/error.hpp"

namespace sknet {
namespace io {
namespace detail {

/// Reads a little-endian unsigned integer from `p` (no alignment assumed, any host byte order).
template <class UInt>
UInt load_le(const unsigned char* p) {
  UInt v = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i) v |= static_cast<UInt>(static_cast<UInt>(p[i]) << (8 * i));
  return v;
}

/// Whether this host stores integers (and floats) least significant byte first.
inline bool host_is_little_endian() {
  const std::uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

template <class UInt>
void store_le(UInt v, unsigned char* p) {
  for (std::size_t i = 0; i < sizeof(UInt); ++i) p[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xFFu);
}

/// a * b into `out` unless it exceeds `limit`.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return true;
}

/// Element count of a shape; false when the product of its non-zero extents exceeds int64
/// (such a shape is rejected even when another extent is 0: its strides would overflow).
inline bool checked_numel(const std::vector<std::uint64_t>& shape, std::uint64_t& numel) {
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t nonzero = 1;
  bool zero = false;
  for (std::uint64_t d : shape) {
    if (d == 0) {
      zero = true;
      continue;
    }
    if (!checked_mul(nonzero, d, limit, nonzero)) return false;
  }
  numel = zero ? 0 : nonzero;
  return true;
}

/// A byte string fit for an error message: non-printable bytes as \xNN, at most `max` bytes.
inline std::string printable(const std::string& s, std::size_t max = 64) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

inline std::string quote_name(const std::string& s) { return "'" + printable(s) + "'"; }

inline std::string join_u64(const std::vector<std::uint64_t>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

/// "a FIFO", "a directory", ...: what a non-regular file is, for an error message.
inline const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace detail

/// A regular file opened for reading by ranges. Opening never blocks (a FIFO is opened
/// non-blocking and then refused), and anything but a regular file (FIFO, device such as
/// /dev/zero, directory, socket) is a FormatError naming the path, so a reader never waits for
/// a writer or reads an endless stream. Readers check the header first and then read only the
/// byte ranges it declares.
class InputFile {
 public:
  explicit InputFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw FormatError(path_ + ": cannot open for reading: " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      throw FormatError(path_ + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw FormatError(path_ + ": expected a regular file, got " + detail::file_kind(st.st_mode));
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }

  const std::string& path() const { return path_; }
  /// The file's size when it was opened.
  std::uint64_t size() const { return size_; }

  /// Reads exactly `count` bytes at `offset` into `dst`; FormatError naming the path on a read
  /// error or when the file ends early (it shrank since it was opened).
  void read_at(std::uint64_t offset, unsigned char* dst, std::size_t count) const {
    std::size_t done = 0;
    while (done < count) {
      const std::size_t chunk = std::min<std::size_t>(count - done, std::size_t(1) << 30);
      const ssize_t n = ::pread(fd_, dst + done, chunk, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        throw FormatError(path_ + ": read error at offset " + std::to_string(offset + done) + ": " +
                          std::strerror(errno));
      if (n == 0)
        throw FormatError(path_ + ": unexpected end of file at offset " + std::to_string(offset + done) +
                          ": expected " + std::to_string(count - done) +
                          " more byte(s) (the file shrank while it was read)");
      done += static_cast<std::size_t>(n);
    }
  }
  /// `count` bytes at `offset` as a vector.
  std::vector<unsigned char> read(std::uint64_t offset, std::size_t count) const {
    std::vector<unsigned char> bytes(count);
    read_at(offset, bytes.data(), count);
    return bytes;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// A file written under a temporary name in the directory of `path` ("<path>.tmp-<pid>-<n>",
/// created exclusively, permissions from the umask) and renamed over `path` by commit(). Until
/// then `path` is untouched; an AtomicFile destroyed without commit() removes its temporary file,
/// so a failed or interrupted write never leaves a partial file under the real name. A symbolic
/// link is followed (the file it names is replaced, the link kept); an existing `path` that is
/// not a regular file (a device such as /dev/null, a FIFO) is written in place, as it cannot be
/// replaced.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)) {
    struct stat st;
    if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      if (S_ISDIR(st.st_mode)) throw FormatError(path_ + ": cannot open for writing: it is a directory");
      fd_ = ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd_ < 0) throw FormatError(path_ + ": cannot open for writing: " + std::strerror(errno));
      in_place_ = true;
      return;
    }
    std::string target = path_;
    struct stat lst;
    if (::lstat(path_.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      if (char* resolved = ::realpath(path_.c_str(), nullptr)) {
        target = resolved;
        std::free(resolved);
      }
    }
    target_ = target;
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      temp_ = target_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0 || errno != EEXIST) break;
    }
    if (fd_ < 0) throw FormatError(path_ + ": cannot open for writing: " + std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !in_place_) ::unlink(temp_.c_str());
  }

  const std::string& path() const { return path_; }

  /// Appends bytes; FormatError naming the path on failure (e.g. a full disk).
  void write(const unsigned char* data, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, std::min<std::size_t>(size - done, std::size_t(1) << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw FormatError(path_ + ": write failed: " + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
  }
  void write(const std::vector<unsigned char>& bytes) { write(bytes.data(), bytes.size()); }

  /// Closes the temporary file (reporting a failed close as a failed write); commit() calls it.
  void close() {
    if (fd_ < 0) return;
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) throw FormatError(path_ + ": write failed: " + std::strerror(errno));
  }

  /// Closes and renames the temporary file over `path`.
  void commit() {
    close();
    if (!in_place_ && ::rename(temp_.c_str(), target_.c_str()) != 0)
      throw FormatError(path_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string path_, target_, temp_;
  int fd_ = -1;
  bool committed_ = false, in_place_ = false;
};

namespace detail {

/// The whole of a regular file as bytes (FormatError naming the path for anything else).
inline std::vector<unsigned char> read_file(const std::string& path) {
  const InputFile f(path);
  if (f.size() > std::numeric_limits<std::size_t>::max())
    throw FormatError(path + ": file of " + std::to_string(f.size()) + " bytes does not fit in memory");
  return f.read(0, static_cast<std::size_t>(f.size()));
}

/// Writes (replaces) a file atomically (see AtomicFile); FormatError naming the path on failure.
inline void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace detail
}  // namespace io
}  // namespace sknet
