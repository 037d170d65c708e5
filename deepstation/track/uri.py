"""Which tracking store is in use, and how to show its URI without the password."""
from __future__ import annotations

import os
import re
from pathlib import Path

URI_ENV = "DEEPSTATION_TRACKING_URI"
DEFAULT_FILE = "mlflow.db"  # MLflow's own default name: `mlflow ui` run in the same folder finds the runs


def tracking_uri(configured: str | None = None) -> str:
    """The task's tracking.uri, else $DEEPSTATION_TRACKING_URI, else a SQLite file in the working folder."""
    uri = configured or os.environ.get(URI_ENV)
    if uri:
        return _expand(uri)
    return f"sqlite:///{Path.cwd().resolve() / DEFAULT_FILE}"


def _expand(uri: str) -> str:
    """${NAME} from the environment (a run folder stores a password of tracking.uri so), percent-encoded."""
    from urllib.parse import quote

    def value(match: re.Match) -> str:
        if match.group(1) not in os.environ:
            from deepstation.errors import DeepstationError

            raise DeepstationError(f"tracking.uri: the environment variable `{match.group(1)}` is not set; export "
                                   f"it (`export {match.group(1)}=...`)")
        return quote(os.environ[match.group(1)], safe="")

    return re.sub(r"\$\{(\w+)\}", value, uri)


def masked(uri: str) -> str:
    """The URI with any password replaced by ***, for messages and logs. As SQLAlchemy reads a URL, the password
    runs from the user's `:` to the first `@`, and may hold `/` or `:`."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", str(uri))


def is_sql(uri: str) -> bool:
    return str(uri).split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql")
