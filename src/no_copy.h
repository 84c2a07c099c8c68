// The base of the scope guards and owners in src/: an object that is neither
// copied nor assigned, nor moved (a class that must move, as handle<T>::lease,
// writes its own copy and move members instead of deriving from this).
#pragma once

namespace opm {

class no_copy {
public:
    no_copy(const no_copy&) = delete;
    no_copy& operator=(const no_copy&) = delete;

protected:
    no_copy() = default;
    ~no_copy() = default;
};

}  // namespace opm
