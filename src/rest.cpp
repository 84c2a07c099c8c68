// REST routes (RegisterRestCallback, RegisterChunkedRestCallback): each route is
// a registration like a family's, numbered, because Orthanc calls each route
// through a C function of its own (a fixed table of trampolines).

#include "callbacks.h"
#include "errors.h"
#include "handles.h"
#include "interpreter_pool.h"
#include "orthanc_handwritten.h"
#include "py_bytes.h"
#include "sdk.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace opm {

namespace {

/// OrthancPluginRestCallback carries no user data: each route gets its own
/// trampoline, instantiated from a template, up to this many routes.
constexpr size_t max_routes = 256;

/// What one interpreter registered for a route: `callback` serves every method
/// (RegisterRestCallback), or one handler per method (RegisterChunkedRestCallback,
/// where post and put create the reader of a chunked body). Empty: none.
struct route_handlers {
    py::object callback;
    py::object get, post, remove, put;

    bool empty() const { return !callback && !get && !post && !remove && !put; }
    /// Which methods have a handler, for comparing interpreters' registrations.
    std::string methods() const {
        return std::string(get ? "G" : "") + (post ? "P" : "") + (remove ? "D" : "") +
               (put ? "U" : "");
    }
};

/// One regular expression registered with Orthanc, and what each interpreter
/// registered for it (the last registration of an interpreter counts). The plugin
/// state's family_registry owns it, as route number `id` of its trampolines.
struct route final : callback_list_of<route_handlers> {
    route(std::string expression, bool is_chunked)
        : callback_list_of(family_scripts::either),
          regex(std::move(expression)),
          chunked(is_chunked) {}

    const std::string regex;
    const bool chunked;
};

using route_entries = std::vector<route_handlers>;

/// Calls `body(route, handlers)` in the interpreter picked for route `id`.
template <typename What, typename Body>
OrthancPluginErrorCode dispatch_route(size_t id, const What& what, Body&& body) {
    plugin_state* current = current_state();
    // As dispatch(): the routes are read without a lock once the pool runs.
    if (current == nullptr || !current->pool.running()) return OrthancPluginErrorCode_Plugin;
    route* r = &static_cast<route&>(current->families.route(id));
    return dispatch_to(
        r, dispatch_policy::least_loaded, what, OrthancPluginErrorCode_Plugin,
        [&](const route_entries& entries, size_t) { return body(*r, entries.back()); });
}

const char* method_name(OrthancPluginHttpMethod method) {
    switch (method) {
        case OrthancPluginHttpMethod_Get: return "GET";
        case OrthancPluginHttpMethod_Post: return "POST";
        case OrthancPluginHttpMethod_Put: return "PUT";
        case OrthancPluginHttpMethod_Delete: return "DELETE";
        default: return "UNKNOWN";
    }
}

/// The keyword arguments of a route call, as the existing plugin passes them.
/// A chunked request has no body yet when its reader is created.
py::dict request_kwargs(const OrthancPluginHttpRequest* request, bool with_body) {
    py::dict kwargs;
    kwargs["method"] = method_name(request->method);
    py::tuple groups(request->groupsCount);
    for (uint32_t i = 0; i < request->groupsCount; ++i) groups[i] = decode_text(request->groups[i]);
    kwargs["groups"] = groups;
    kwargs["headers"] =
        string_map(request->headersCount, request->headersKeys, request->headersValues);
    if (request->method == OrthancPluginHttpMethod_Get) {
        kwargs["get"] = string_map(request->getCount, request->getKeys, request->getValues);
    } else if (with_body && (request->method == OrthancPluginHttpMethod_Post ||
                             request->method == OrthancPluginHttpMethod_Put)) {
        kwargs["body"] = py::bytes(static_cast<const char*>(request->body), request->bodySize);
    }
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 9)
    // What RegisterHttpAuthentication's callback granted the request with, if anything.
    if (request->authenticationPayloadSize > 0)
        kwargs["authenticationPayload"] =
            py::bytes(static_cast<const char*>(request->authenticationPayload),
                      request->authenticationPayloadSize);
#endif
    return kwargs;
}

/// Orthanc closes the connection without any response when a callback
/// returns success without answering: make it an error, with a log line.
OrthancPluginErrorCode check_answered(borrowed<OrthancPluginRestOutput>& output,
                                      const call_name& what) {
    if (output.raw().used()) return OrthancPluginErrorCode_Success;
    log_error("Python: " + describe(what) +
              " returned without answering (call output.AnswerBuffer or "
              "output.SendHttpStatusCode)");
    return OrthancPluginErrorCode_Plugin;
}

/// GET and DELETE of a chunked route, every method of the others.
OrthancPluginErrorCode handle_rest(size_t id, OrthancPluginRestOutput* output, const char* url,
                                   const OrthancPluginHttpRequest* request) {
    const call_name what{"the REST callback for ", url};
    return dispatch_route(id, what, [&](const route& r, const route_handlers& handlers) {
        const py::object& callable = !r.chunked ? handlers.callback
                                     : request->method == OrthancPluginHttpMethod_Get
                                         ? handlers.get
                                         : handlers.remove;
        // None after a fall-back whose script registered the route differently.
        if (!callable) throw std::runtime_error("this interpreter has no handler for the method");
        borrowed<OrthancPluginRestOutput> py_output(output);
        callable(py_output.object(), decode_text(url), **request_kwargs(request, true));
        return check_answered(py_output, what);
    });
}

/// The body of a chunked POST or PUT, read by a Python object created in one
/// interpreter, where its every later call runs (pinned).
struct chunked_reader {
    size_t index;
    py::object reader;  ///< what postHandler/putHandler returned
    std::string url;
    /// AddChunk raised: the request fails without Execute (Orthanc 1.10 goes on
    /// to execute after a chunk's error).
    OrthancPluginErrorCode failed = OrthancPluginErrorCode_Success;
};

OrthancPluginErrorCode create_reader(size_t id, OrthancPluginServerChunkedRequestReader** reader,
                                     const char* url, const OrthancPluginHttpRequest* request) {
    const call_name what{"the chunked REST callback for ", url};
    return dispatch_route(id, what, [&](const route&, const route_handlers& handlers) {
        const py::object& factory =
            request->method == OrthancPluginHttpMethod_Post ? handlers.post : handlers.put;
        if (!factory) throw std::runtime_error("this interpreter has no handler for the method");
        py::object created = factory(decode_text(url), **request_kwargs(request, false));
        if (!py::hasattr(created, "AddChunk") || !py::hasattr(created, "Execute"))
            throw py::type_error(
                "the reader must be an object with AddChunk(data) and "
                "Execute(output) methods, not " +
                py::repr(created).cast<std::string>());
        *reader = reinterpret_cast<OrthancPluginServerChunkedRequestReader*>(
            new chunked_reader{state().pool.current_index(), std::move(created), url});
        return OrthancPluginErrorCode_Success;
    });
}

chunked_reader& reader_of(OrthancPluginServerChunkedRequestReader* raw) {
    return *reinterpret_cast<chunked_reader*>(raw);
}

OrthancPluginErrorCode add_chunk(OrthancPluginServerChunkedRequestReader* raw, const void* data,
                                 uint32_t size) {
    chunked_reader& reader = reader_of(raw);
    const call_name what{"AddChunk of the chunked REST callback for ", reader.url.c_str()};
    if (reader.failed != OrthancPluginErrorCode_Success) return reader.failed;
    reader.failed = call_in(reader.index, what, OrthancPluginErrorCode_Plugin, [&] {
        reader.reader.attr("AddChunk")(py::bytes(static_cast<const char*>(data), size));
        return OrthancPluginErrorCode_Success;
    });
    return reader.failed;
}

OrthancPluginErrorCode execute_reader(OrthancPluginServerChunkedRequestReader* raw,
                                      OrthancPluginRestOutput* output) {
    chunked_reader& reader = reader_of(raw);
    if (reader.failed != OrthancPluginErrorCode_Success) return reader.failed;
    const call_name what{"Execute of the chunked REST callback for ", reader.url.c_str()};
    return call_in(reader.index, what, OrthancPluginErrorCode_Plugin, [&] {
        borrowed<OrthancPluginRestOutput> py_output(output);
        reader.reader.attr("Execute")(py_output.object());
        return check_answered(py_output, what);
    });
}

void finalize_reader(OrthancPluginServerChunkedRequestReader* raw) {
    std::unique_ptr<chunked_reader> reader(&reader_of(raw));
    drop_in(reader->index, "a chunked REST reader", reader->reader);
}

template <size_t Id>
OrthancPluginErrorCode rest_trampoline(OrthancPluginRestOutput* output, const char* url,
                                       const OrthancPluginHttpRequest* request) {
    return handle_rest(Id, output, url, request);
}

template <size_t Id>
OrthancPluginErrorCode reader_trampoline(OrthancPluginServerChunkedRequestReader** reader,
                                         const char* url, const OrthancPluginHttpRequest* request) {
    return create_reader(Id, reader, url, request);
}

template <size_t... Ids>
constexpr std::array<OrthancPluginRestCallback, sizeof...(Ids)> make_rest_trampolines(
    std::index_sequence<Ids...>) {
    return {&rest_trampoline<Ids>...};
}

template <size_t... Ids>
constexpr std::array<OrthancPluginServerChunkedRequestReaderFactory, sizeof...(Ids)>
make_reader_trampolines(std::index_sequence<Ids...>) {
    return {&reader_trampoline<Ids>...};
}

constexpr auto g_rest_trampolines = make_rest_trampolines(std::make_index_sequence<max_routes>{});
constexpr auto g_reader_trampolines =
    make_reader_trampolines(std::make_index_sequence<max_routes>{});

/// The route registered for `regex`, if any.
route* find_route(const family_registry& families, const std::string& regex) {
    for (size_t id = 0; id < families.route_count(); ++id) {
        auto& r = static_cast<route&>(families.route(id));
        if (r.regex == regex) return &r;
    }
    return nullptr;
}

/// Raises unless `handlers` may join route `r` (the same registration function,
/// and for chunked routes the same HTTP methods as the first interpreter's).
void check_joins(const char* function, const route& r, bool chunked,
                 const route_handlers& handlers) {
    const char* problem = nullptr;
    if (r.chunked != chunked)
        problem = " is already registered by the other REST registration function";
    else if (chunked && !r.interpreters().empty() &&
             handlers.methods() != r.of(r.interpreters().front()).back().methods())
        problem = " is already registered with handlers for other HTTP methods";
    if (problem != nullptr)
        raise_orthanc_exception(OrthancPluginErrorCode_BadSequenceOfCalls,
                                (std::string(function) + ": " + r.regex + problem).c_str());
}

/// The route of `regex` (a new one, registered with Orthanc by `add_to_orthanc(id)`
/// the first time) gets the current interpreter's handlers.
template <typename AddToOrthanc>
void add_route(const char* function, const std::string& regex, bool chunked,
               route_handlers handlers, AddToOrthanc&& add_to_orthanc) {
    check_registration_open(function);
    family_registry& families = state().families;
    route* target = find_route(families, regex);
    if (target != nullptr) check_joins(function, *target, chunked, handlers);
    if (target == nullptr) {
        if (families.route_count() == max_routes)
            raise_orthanc_exception(OrthancPluginErrorCode_NotEnoughMemory,
                                    "too many REST routes (at most 256)");
        auto created = std::make_unique<route>(regex, chunked);
        target = created.get();
        add_to_orthanc(families.add_route(std::move(created)));
    }
    target->add(function, std::move(handlers));
}

void register_rest_callback(const std::string& regex, py::function callback) {
    route_handlers handlers;
    handlers.callback = std::move(callback);
    add_route("RegisterRestCallback", regex, false, std::move(handlers), [&](size_t id) {
        OrthancPluginRegisterRestCallbackNoLock(context(), regex.c_str(), g_rest_trampolines[id]);
    });
}

py::object optional_handler(const py::object& handler, const char* name) {
    if (handler.is_none()) return py::object();
    if (!PyCallable_Check(handler.ptr()))
        throw py::type_error(std::string("RegisterChunkedRestCallback: ") + name +
                             " must be callable or None");
    return handler;
}

void register_chunked_rest_callback(const std::string& regex, const py::object& get,
                                    const py::object& post, const py::object& remove,
                                    const py::object& put) {
    route_handlers handlers;
    handlers.get = optional_handler(get, "getHandler");
    handlers.post = optional_handler(post, "postHandler");
    handlers.remove = optional_handler(remove, "deleteHandler");
    handlers.put = optional_handler(put, "putHandler");
    if (handlers.empty())
        throw py::value_error("RegisterChunkedRestCallback needs at least one handler");
    const bool get_set = bool(handlers.get);
    const bool post_set = bool(handlers.post);
    const bool remove_set = bool(handlers.remove);
    const bool put_set = bool(handlers.put);
    add_route("RegisterChunkedRestCallback", regex, true, std::move(handlers), [&](size_t id) {
        OrthancPluginRegisterChunkedRestCallback(context(), regex.c_str(),
                                                 get_set ? g_rest_trampolines[id] : nullptr,
                                                 post_set ? g_reader_trampolines[id] : nullptr,
                                                 remove_set ? g_rest_trampolines[id] : nullptr,
                                                 put_set ? g_reader_trampolines[id] : nullptr,
                                                 add_chunk, execute_reader, finalize_reader);
    });
}

}  // namespace

void bind_register_rest_callback(py::module_& module, const binding_text<2>& text) {
    text.def(module, &register_rest_callback);
}

void bind_register_chunked_rest_callback(py::module_& module, const binding_text<5>& text) {
    text.def(module, &register_chunked_rest_callback);
}

}  // namespace opm
