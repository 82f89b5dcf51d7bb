"""Numbered SQL migrations for the cope-local store, applied in order by cope_local.migrate."""
