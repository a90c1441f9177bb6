"""Packing a tree: its manifest built, every file hashed (scan.py), and the bundle file written
reproducibly (writer.py). Never shipped."""
