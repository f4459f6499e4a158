"""Measurements, not the app: `bench` (the benchmarks), `reproduce` (the articles' results) and
`browser` (the one streamlit-run + Chromium harness, shared with the browser tests and the
screenshot tool).
"""
