// Python objects around SDK handles, and the conversions the generated bindings use.
#pragma once

#include "errors.h"
#include "interpreter_pool.h"
#include "no_copy.h"
#include "py_bytes.h"
#include "sdk.h"

#include <pybind11/pybind11.h>

#include <orthanc/OrthancCPlugin.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace opm {

namespace py = pybind11;

/// How to free an owned handle of type T; specialized by the generated code
/// for the types the SDK has a Free function for.
template <typename T>
struct handle_traits {
    static void destroy(T* object);
};

/// The Python object around an SDK handle (orthanc.Image, orthanc.RestOutput...).
///
/// - Owned: created by Python (CreateImage...), freed when collected.
/// - Borrowed: lent by Orthanc to a callback, invalidated when the callback
///   returns; later use raises orthanc.OrthancException, never touches the pointer.
/// - Python cannot construct one: there is no constructor binding.
/// - Used with the GIL of the interpreter that created it, from any of its
///   threads. An SDK call runs with the GIL released: it holds a `lease`, and
///   invalidate() / release() wait for every lease to end, so a thread that got
///   the object from a callback cannot use it after Orthanc freed it.
template <typename T>
class handle : no_copy {
public:
    /// The pointer, valid while this lives (an SDK call in progress); empty for
    /// an optional parameter given None.
    class lease {
    public:
        lease() = default;
        lease(lease&& other) noexcept : owner_(other.owner_), pointer_(other.pointer_) {
            other.owner_ = nullptr;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        lease& operator=(lease&&) = delete;
        ~lease() {
            if (owner_ != nullptr) owner_->users_.fetch_sub(1, std::memory_order_seq_cst);
        }
        T* get() const { return pointer_; }

    private:
        friend class handle;
        lease(handle* owner, T* pointer) : owner_(owner), pointer_(pointer) {}
        handle* owner_ = nullptr;
        T* pointer_ = nullptr;
    };

    handle(T* pointer, bool owned) : pointer_(pointer), owned_(owned) {}
    ~handle() {
        T* pointer = pointer_.load();
        if (owned_ && pointer != nullptr) handle_traits<T>::destroy(pointer);
    }

    /// The pointer for one SDK call; raises if the object is no longer valid.
    /// Counted before the check, so invalidate() either sees the count or
    /// this sees the null pointer (both sequentially consistent).
    lease take() {
        users_.fetch_add(1, std::memory_order_seq_cst);
        T* pointer = pointer_.load(std::memory_order_seq_cst);
        if (pointer == nullptr) {
            users_.fetch_sub(1, std::memory_order_seq_cst);
            raise_orthanc_exception(OrthancPluginErrorCode_BadSequenceOfCalls,
                                    "this object belongs to a callback that has returned");
        }
        return lease(this, pointer);
    }
    /// take() for a call that answers a request (see `used()`).
    lease use() {
        lease taken = take();
        used_.store(true, std::memory_order_relaxed);
        return taken;
    }
    /// take() of an optional parameter: an empty lease for None.
    static lease take_optional(handle* object) { return object ? object->take() : lease(); }
    bool used() const { return used_.load(std::memory_order_relaxed); }
    /// No further use; waits for the SDK calls in progress in other threads. GIL held.
    void invalidate() {
        pointer_.store(nullptr, std::memory_order_seq_cst);
        wait_for_leases();
    }
    /// Hands the handle over to Orthanc: no longer freed here, no longer usable.
    T* release() {
        T* pointer = pointer_.exchange(nullptr, std::memory_order_seq_cst);
        if (pointer == nullptr)
            raise_orthanc_exception(OrthancPluginErrorCode_BadSequenceOfCalls,
                                    "this object belongs to a callback that has returned");
        owned_ = false;
        wait_for_leases();
        return pointer;
    }

private:
    void wait_for_leases() {
        if (users_.load(std::memory_order_seq_cst) == 0) return;
        // The lease holders need this interpreter's GIL to finish their call.
        release_gil unlocked;
        while (users_.load(std::memory_order_seq_cst) != 0)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }

    std::atomic<T*> pointer_;
    bool owned_;
    std::atomic<bool> used_{false};
    std::atomic<int> users_{0};
};

/// A pybind11 method of handle<T> made of `body(T* object, args...)`: the object is
/// leased for the call, so it stays valid during it, and the call raises when it
/// no longer is.
template <typename T, typename... Args, typename Body>
auto leased(Body body) {
    return [body](handle<T>& self, Args... args) {
        auto lease = self.take();
        return body(lease.get(), std::move(args)...);
    };
}

/// A borrowed handle for the duration of a callback: `object` goes to Python,
/// and the handle is invalidated when this leaves scope (GIL held).
template <typename T>
class borrowed : no_copy {
public:
    explicit borrowed(T* pointer)
        : raw_(new handle<T>(pointer, false)),
          object_(py::cast(raw_, py::return_value_policy::take_ownership)) {}
    borrowed(const T* pointer) : borrowed(const_cast<T*>(pointer)) {}
    ~borrowed() { raw_->invalidate(); }

    const py::object& object() const { return object_; }
    handle<T>& raw() { return *raw_; }

private:
    handle<T>* raw_;
    py::object object_;
};

/// A new owned Python object for a handle the SDK returned (NULL: an error).
template <typename T>
py::object new_owned(T* pointer, const char* function) {
    if (pointer == nullptr)
        raise_orthanc_exception(OrthancPluginErrorCode_InternalError,
                                (std::string(function) + " returned no object").c_str());
    return py::cast(new handle<T>(pointer, true), py::return_value_policy::take_ownership);
}

/// A str from a string the SDK allocated (freed here); None for NULL.
inline py::object owned_text(char* text) {
    sdk_string owner(text);
    if (text == nullptr) return py::none();
    return decode_text(text);
}

/// The same, for an SDK call whose NULL means it failed: raises
/// orthanc.OrthancException(code, failure) instead of returning None.
inline py::object required_text(char* text, OrthancPluginErrorCode code, const char* failure) {
    if (text == nullptr) raise_orthanc_exception(code, failure);
    return owned_text(text);
}

inline void free_buffer(OrthancPluginMemoryBuffer* buffer) {
    OrthancPluginFreeMemoryBuffer(context(), buffer);
}
inline void free_buffer(OrthancPluginMemoryBuffer64* buffer) {
    OrthancPluginFreeMemoryBuffer64(context(), buffer);
}

/// Owns an OrthancPluginMemoryBuffer (or ...64) filled by the SDK; frees it on destruction.
template <typename Buffer>
class sdk_buffer : no_copy {
public:
    sdk_buffer() = default;
    ~sdk_buffer() {
        if (buffer_.data != nullptr) free_buffer(&buffer_);
    }

    Buffer* get() { return &buffer_; }
    py::bytes bytes() const { return py::bytes(data(), size()); }
    const char* data() const { return static_cast<const char*>(buffer_.data); }
    size_t size() const { return static_cast<size_t>(buffer_.size); }

private:
    Buffer buffer_{nullptr, 0};
};

using memory_buffer = sdk_buffer<OrthancPluginMemoryBuffer>;

/// A Python dict of str -> str as the SDK's count + keys + values arrays.
class string_dict {
public:
    explicit string_dict(const py::object& mapping) {
        if (!mapping.is_none()) {
            for (auto item : py::dict(mapping)) {
                keys_.push_back(py::str(item.first).cast<std::string>());
                values_.push_back(py::str(item.second).cast<std::string>());
            }
        }
        for (size_t i = 0; i < keys_.size(); ++i) {
            key_pointers_.push_back(keys_[i].c_str());
            value_pointers_.push_back(values_[i].c_str());
        }
    }
    uint32_t count() const { return static_cast<uint32_t>(keys_.size()); }
    const char* const* keys() const { return key_pointers_.data(); }
    const char* const* values() const { return value_pointers_.data(); }

private:
    std::vector<std::string> keys_, values_;
    std::vector<const char*> key_pointers_, value_pointers_;
};

inline void check_image_buffer(const byte_view& buffer, uint32_t pitch, uint32_t height) {
    if (buffer.size() < static_cast<size_t>(pitch) * height)
        throw py::value_error("the buffer holds fewer than pitch * height bytes");
}

/// A class whose attributes are int constants (orthanc.ChangeType.STABLE_STUDY).
inline py::object make_constants_class(const char* name, const py::dict& constants,
                                       const char* doc) {
    py::dict namespace_(constants);
    namespace_["__doc__"] = doc;
    namespace_["__module__"] = "orthanc";
    return py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(&PyType_Type))(
        name, py::make_tuple(), namespace_);
}

}  // namespace opm
