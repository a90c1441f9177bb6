"""What Spack needs to see a redeployed store: its install database, read, merged and padded as Spack
does (database.py, pure; runs on a ship's target, Python 3.6), and what a bundle carries for it besides
the store paths (store.py: the database's records, sbang, Spack itself). Imports nothing."""
