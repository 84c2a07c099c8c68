// C-FIND and worklist requests (the two query families of the DICOM SCP), each in
// its first form (AE titles) and, from SDK 1.12.10, with the DICOM connection.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

// The families and trampolines below are named in generator/manifest.toml
// (`registers`): the generated module defines their registration functions.
const family<OrthancPluginErrorCode> g_find{"the C-FIND callback", OrthancPluginErrorCode_Plugin};
const family<OrthancPluginErrorCode> g_worklist{"the worklist callback",
                                                OrthancPluginErrorCode_Plugin};
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)
const family<OrthancPluginErrorCode> g_find2{"the C-FIND callback", OrthancPluginErrorCode_Plugin};
const family<OrthancPluginErrorCode> g_worklist2{"the worklist callback",
                                                 OrthancPluginErrorCode_Plugin};
#endif

namespace {

/// A C-FIND or worklist request: the answers and the query are borrowed for the
/// call, and `call_each(callbacks, answers, query)` calls the chosen interpreter's
/// callbacks with them and what else the form passes.
template <typename Answers, typename Query, typename CallEach>
OrthancPluginErrorCode answer_query(const family<OrthancPluginErrorCode>& f, Answers* answers,
                                    const Query* query, CallEach call_each) {
    return dispatch(f, [&](const callables& callbacks, size_t) {
        borrowed<Answers> py_answers(answers);
        borrowed<Query> py_query(query);
        call_each(callbacks, py_answers.object(), py_query.object());
        return OrthancPluginErrorCode_Success;
    });
}

/// How the first forms pass the AE titles, as the existing plugin does: C-FIND
/// as keyword arguments (issuerAet=, calledAet=), worklists positionally.
enum class aets_as { keywords, positional };

/// call_each of answer_query for the forms with the AE titles.
auto with_aets(const char* issuer_aet, const char* called_aet, aets_as form) {
    return [=](const callables& callbacks, py::handle py_answers, py::handle py_query) {
        py::str issuer = decode_text(issuer_aet);
        py::str called = decode_text(called_aet);
        for (const py::object& callback : callbacks) {
            if (form == aets_as::keywords)
                callback(py_answers, py_query, py::arg("issuerAet") = issuer,
                         py::arg("calledAet") = called);
            else
                callback(py_answers, py_query, issuer, called);
        }
    };
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)
/// call_each of answer_query for the forms with the DICOM connection, which is
/// borrowed for the call too.
auto with_connection(const OrthancPluginDicomConnection* connection) {
    return [connection](const callables& callbacks, py::handle py_answers, py::handle py_query) {
        borrowed<OrthancPluginDicomConnection> py_connection(connection);
        for (const py::object& callback : callbacks)
            callback(py_answers, py_query, py_connection.object());
    };
}
#endif

}  // namespace

OrthancPluginErrorCode on_find(OrthancPluginFindAnswers* answers,
                               const OrthancPluginFindQuery* query, const char* issuer_aet,
                               const char* called_aet) {
    return answer_query(g_find, answers, query,
                        with_aets(issuer_aet, called_aet, aets_as::keywords));
}

OrthancPluginErrorCode on_worklist(OrthancPluginWorklistAnswers* answers,
                                   const OrthancPluginWorklistQuery* query, const char* issuer_aet,
                                   const char* called_aet) {
    return answer_query(g_worklist, answers, query,
                        with_aets(issuer_aet, called_aet, aets_as::positional));
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

OrthancPluginErrorCode on_find2(OrthancPluginFindAnswers* answers,
                                const OrthancPluginFindQuery* query,
                                const OrthancPluginDicomConnection* connection) {
    return answer_query(g_find2, answers, query, with_connection(connection));
}

OrthancPluginErrorCode on_worklist2(OrthancPluginWorklistAnswers* answers,
                                    const OrthancPluginWorklistQuery* query,
                                    const OrthancPluginDicomConnection* connection) {
    return answer_query(g_worklist2, answers, query, with_connection(connection));
}

#endif

}  // namespace opm
