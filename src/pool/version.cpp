// Layer 8 (pool): the library's own version, compiled in from the generated <bpool/version.hpp>.
#include <bpool/version.hpp>

namespace bpool {

version_info version() noexcept {
    return header_version;
}

}  // namespace bpool
