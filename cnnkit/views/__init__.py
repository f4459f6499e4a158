"""What each page shows, as plain Python (no Streamlit): the pages stay thin scripts over these.

`editing` (Build's layer editor and Train's settings table), `monitor` (a run's live status),
`ledger` (Compare's table), `analysis` (confusion matrix, mistakes), `demo` (Draw's quick train),
`charts` (plotly figures) and `text` (formatters and the CLI's progress line).
"""
