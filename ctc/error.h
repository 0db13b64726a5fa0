// The core reports bad input by throwing ctc::Error. `argument` names the
// offending argument so bindings can map it to the right exception type and
// users see what to fix.
#pragma once

#include <stdexcept>
#include <string>

namespace ctc {

enum class ErrorKind { kValue, kType, kResource };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string argument, const std::string& message)
      : std::runtime_error(message), kind_(kind), argument_(std::move(argument)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& argument() const { return argument_; }

 private:
  ErrorKind kind_;
  std::string argument_;
};

}  // namespace ctc
