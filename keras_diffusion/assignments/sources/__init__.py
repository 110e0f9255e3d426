"""The assignments' sources: jupytext percent-format notebooks, each the reference solution.

Read as text by ``release`` and by the tests, never imported. They live in
the package (this folder is a package so that pip installs the files), so
``release`` finds them after any kind of install; tutorials/assignments/README.md
is the teacher's guide to them.
"""
