// REST routes: RegisterRestCallback, the RestOutput class, dispatch of requests.
#pragma once

#include <pybind11/pybind11.h>

namespace opm {

namespace py = pybind11;

/// Drops the route callables of interpreter `index`; its GIL held.
void finalize_rest(size_t index);

}  // namespace opm
