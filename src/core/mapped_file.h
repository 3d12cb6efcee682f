// mapped_file.h - a read-only memory map of a whole file (weights are never copied whole).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rocforge {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws rocforge::Error naming the path and the OS error.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace rocforge
