// REST routes (RegisterRestCallback, RegisterChunkedRestCallback): their registry,
// kept apart from callback_list because each route needs its own C trampoline;
// callbacks.cpp calls these with the other families'.
#pragma once

#include <pybind11/pybind11.h>

namespace opm {

namespace py = pybind11;

/// Drops the route callables of interpreter `index`; its GIL held.
void finalize_rest(size_t index);

/// Forgets that interpreter `index` registered routes (after finalize_rest; while
/// the scripts load only): the routes stay registered with Orthanc.
void forget_rest(size_t index);

/// Forgets the routes of a previous run (after finalize_rest for every interpreter).
void reset_rest();

}  // namespace opm
