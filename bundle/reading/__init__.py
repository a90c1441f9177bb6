"""Reading a bundle: its tar stream parsed (tarstream.py) and every member checked against the manifest
before a byte of it reaches a sink (reader.py). Runs on a ship's target (Python 3.6): imports nothing."""
