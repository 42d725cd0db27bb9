"""Packaging lives in setup.cfg; this file exists for legacy tooling."""

from setuptools import setup

setup()
