"""Rows as a pandas DataFrame, when pandas is installed (it is optional)."""


def to_pandas(rows):
    """A DataFrame with one row per result and dotted columns ("result.breakdown.bubble_s").

    ``rows`` is a list of dicts (sweep rows, or results of ``estimate`` and the like) or one dict.
    """
    try:
        import pandas
    except ImportError as e:
        raise ImportError("to_pandas needs pandas (Debian: apt-get install python3-pandas)") from e
    return pandas.json_normalize([rows] if isinstance(rows, dict) else list(rows))
