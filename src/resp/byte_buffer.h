// A growable byte buffer whose growth does not zero-fill: the parser's input
// buffer. std::string::resize() writes every new byte, so handing a 64 KiB
// read window to each socket read cost a 64 KiB memset per read (13% of a
// leader's CPU under 256 one-request connections, perf). Here resize() only
// moves the end; the bytes past the old end are uninitialized until the
// caller writes them (a read(2) into prepare()'s window).
//
// Thread-safety: none (one per connection).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace cset::resp {

class ByteBuffer {
 public:
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  char operator[](size_t i) const { return data_[i]; }

  /// Sets the size to `n` bytes, keeping the first min(n, size()) bytes. New
  /// bytes are uninitialized. Grows the capacity geometrically.
  void resize(size_t n) {
    if (n > capacity_) grow(n);
    size_ = n;
  }
  void append(std::string_view bytes) {
    const size_t old = size_;
    resize(old + bytes.size());
    if (!bytes.empty()) std::memcpy(data_.get() + old, bytes.data(), bytes.size());
  }
  /// Drops the first `n` bytes (n <= size()), moving the rest to the front.
  void erase_front(size_t n) {
    if (n < size_) std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n < size_ ? n : size_;
  }
  void clear() { size_ = 0; }
  /// Empties the buffer and returns its memory.
  void release() {
    data_.reset();
    size_ = capacity_ = 0;
  }

 private:
  void grow(size_t n) {
    size_t capacity = capacity_ < 4096 ? 4096 : capacity_;
    while (capacity < n) capacity = capacity * 2 > capacity ? capacity * 2 : n;
    auto data = std::make_unique_for_overwrite<char[]>(capacity);
    if (size_ > 0) std::memcpy(data.get(), data_.get(), size_);
    data_ = std::move(data);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace cset::resp
