"""The store: everything kept about a person on disk — the encrypted SQLite database (profiles,
writings, drafts, settings, training runs, adapter versions, base models), its key and
migrations, and the layout of an adapter version's files (run_folder)."""
