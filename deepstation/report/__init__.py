"""Reports: one self-contained HTML file per comparison, with matplotlib plots inlined."""
