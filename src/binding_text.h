// What the Python surface of a hand-written binding says, from one source:
// generator/manifest.toml (which also writes the stubs).
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <cstddef>
#include <utility>

namespace opm {

namespace py = pybind11;

/// The Python name, parameter names and docstring of a hand-written binding, as
/// its entry in generator/manifest.toml gives them: `Required` parameters, then
/// `Optional` ones whose default is None. The generated module passes each binder
/// its text, and the binder defines its function with `text.def(target, function)`,
/// so no keyword name is written in src/. The generated declaration of a binder
/// fixes the counts: a binder written for other counts does not link, and a
/// function taking another number of arguments does not compile (pybind11
/// checks it against the names).
template <std::size_t Required, std::size_t Optional = 0>
struct binding_text {
    const char* name;
    const char* doc;
    std::array<const char*, Required> required;
    std::array<const char*, Optional> optional;

    /// Defines `function` as name(required..., optional=None...) with the
    /// docstring, in a module (`py::module_`) or as a method (`py::class_`, whose
    /// `self` has no name here). GIL held.
    template <typename Target, typename Function>
    void def(Target& target, Function&& function) const {
        def_with(target, std::forward<Function>(function), std::make_index_sequence<Required>{},
                 std::make_index_sequence<Optional>{});
    }

private:
    template <typename Target, typename Function, std::size_t... R, std::size_t... O>
    void def_with(Target& target, Function&& function, std::index_sequence<R...>,
                  std::index_sequence<O...>) const {
        target.def(name, std::forward<Function>(function), py::arg(required[R])...,
                   (py::arg(optional[O]) = py::none())..., doc);
    }
};

}  // namespace opm
