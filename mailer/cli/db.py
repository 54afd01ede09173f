"""`mailer db upgrade`: the schema."""

from __future__ import annotations

import typer

from mailer.app import db
from mailer.cli.common import fail, load_settings, out

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade(engine)
        out.print(f"database at revision {db.current_revision(engine)}")
    except Exception as exc:  # noqa: BLE001  (any failure: a message and exit 1, no traceback)
        raise fail(f"upgrade failed: {exc}", 1) from None
    finally:
        engine.dispose()
