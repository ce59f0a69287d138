"""Repositories: SQL on one ``Connection``, rows mapped to domain and port types, one
module per table family. A repository never commits; the unit of work does (STYLE.md
example 3)."""
