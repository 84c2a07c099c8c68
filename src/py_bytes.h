// Conversions between C strings or buffers and Python objects.
#pragma once

#include <pybind11/pybind11.h>
#include "no_copy.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace opm {

namespace py = pybind11;

/// The bytes of a bytes-like object (buffer protocol, no copy) or of a str
/// (its UTF-8 form). Holds the object; the GIL may be released while it lives,
/// since the view pins the buffer. GIL held for construction and destruction.
class byte_view : no_copy {
public:
    explicit byte_view(py::handle object) {
        if (PyUnicode_Check(object.ptr())) {
            Py_ssize_t size = 0;
            data_ = PyUnicode_AsUTF8AndSize(object.ptr(), &size);
            if (data_ == nullptr) throw py::error_already_set();
            size_ = static_cast<size_t>(size);
            owner_ = py::reinterpret_borrow<py::object>(object);
        } else {
            if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0)
                throw py::error_already_set();
            has_view_ = true;
            data_ = static_cast<const char*>(view_.buf);
            size_ = static_cast<size_t>(view_.len);
        }
    }
    ~byte_view() {
        if (has_view_) PyBuffer_Release(&view_);
    }

    const char* data() const { return data_; }
    size_t size() const { return size_; }
    /// The size for an SDK parameter of type uint32_t; raises ValueError above
    /// 4 GiB - 1 rather than pass a truncated size (no Python API called: this
    /// may run with the GIL released).
    uint32_t size32() const {
        if (size_ > UINT32_MAX)
            throw py::value_error("a buffer of " + std::to_string(size_) +
                                  " bytes is too large for Orthanc here (at most " +
                                  std::to_string(UINT32_MAX) + " bytes)");
        return static_cast<uint32_t>(size_);
    }

private:
    py::object owner_;
    Py_buffer view_{};
    bool has_view_ = false;
    const char* data_ = nullptr;
    size_t size_ = 0;
};

/// A str from text that Orthanc hands over as bytes of unknown encoding: UTF-8,
/// with undecodable bytes kept as lone surrogates (errors="surrogateescape"),
/// so `s.encode("utf-8", "surrogateescape")` gives back the exact bytes.
inline py::str decode_text(const char* text) {
    if (text == nullptr) text = "";
    PyObject* decoded =
        PyUnicode_DecodeUTF8(text, static_cast<Py_ssize_t>(std::strlen(text)), "surrogateescape");
    if (decoded == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(decoded);
}

/// A dict of the `count` key/value C strings Orthanc passes (HTTP headers,
/// GET arguments), decoded as decode_text does. GIL held.
inline py::dict string_map(uint32_t count, const char* const* keys, const char* const* values) {
    py::dict result;
    for (uint32_t i = 0; i < count; ++i) result[decode_text(keys[i])] = decode_text(values[i]);
    return result;
}

/// UTF-8 of a str for the Orthanc log: lone surrogates (from decode_text) as
/// backslash escapes, so that reporting text from a client never fails. GIL held.
inline std::string loggable_text(py::handle text) {
    PyObject* encoded = PyUnicode_AsEncodedString(text.ptr(), "utf-8", "backslashreplace");
    if (encoded == nullptr) throw py::error_already_set();
    std::string result(PyBytes_AS_STRING(encoded), static_cast<size_t>(PyBytes_GET_SIZE(encoded)));
    Py_DECREF(encoded);
    return result;
}

}  // namespace opm
