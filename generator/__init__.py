"""Generates the `orthanc` module's bindings and stubs from OrthancCPlugin.h.

Stages: parse.py (libclang -> raw facts), model.py (rules -> frozen model),
emit_cpp.py and emit_pyi.py (model -> pybind11 C++ and orthanc.pyi).
"""
