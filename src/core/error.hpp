// error.hpp: the exception the core throws; the bridge turns it into err->text.
#ifndef DISCOVERY_ERROR_HPP
#define DISCOVERY_ERROR_HPP

#include <stdexcept>

namespace discovery {

// Messages are short, single-line and safe to log as they are.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace discovery

#endif
