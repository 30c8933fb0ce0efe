"""Packaging (see README.md); a package so that the tests can import its rules."""
