#!/bin/sh
# Run inside the base image once its packages are installed (both build paths): removes
# what no node tool and no learner uses, which dpkg's path-exclude cannot (the packages'
# own setup scripts read these files while installing).
set -eu
py=/usr/lib/python3.11
# Python's own documentation, test suite, 2to3, turtle graphics, its pure-Python decimal
# (the C one is used), unittest and doctest: 3 MB with their compiled files.
for name in pydoc_data test lib2to3 turtledemo unittest; do
  rm -rf "$py/$name"
done
for name in turtle pydoc doctest _pydecimal; do
  rm -f "$py/$name.py" "$py"/__pycache__/"$name".cpython-*.pyc
done
# debconf's backup copies of its databases
rm -f /var/cache/debconf/*-old
# the package lists and caches (the registry path's apt-get update leaves them)
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
