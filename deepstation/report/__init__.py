"""Reports: one self-contained HTML file per comparison, with matplotlib plots inlined."""


def fmt(value) -> str:
    """A metric for people: 4 decimals, thousands grouped for large values, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
