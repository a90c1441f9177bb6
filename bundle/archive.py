"""The bundle file: reproducible writing (writer.py) and safe, verifying reading (reader.py), under one name."""

from bundle.reader import HASH_IN_NAME, MANIFEST_MAX, Checker, Sink, read
from bundle.writer import DEFAULT_EPOCH, MANIFEST_NAME, SUFFIX, bundle_name, clean_leftovers, epoch, output_path, write

__all__ = ["DEFAULT_EPOCH", "HASH_IN_NAME", "MANIFEST_MAX", "MANIFEST_NAME", "SUFFIX", "Checker", "Sink", "bundle_name",
           "clean_leftovers", "epoch", "output_path", "read", "write"]
