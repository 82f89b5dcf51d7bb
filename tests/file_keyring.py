"""A keyring backend for the tests: a JSON file named by COPE_TEST_KEYRING, so the test process
and the `cope` subprocesses it starts share one keyring (PYTHON_KEYRING_BACKEND selects it)."""

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    @property
    def _path(self) -> Path:
        return Path(os.environ["COPE_TEST_KEYRING"])

    def _load(self) -> dict:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def get_password(self, service, username):
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._path.write_text(json.dumps(entries))

    def delete_password(self, service, username):
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path.write_text(json.dumps(entries))
