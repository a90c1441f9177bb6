"""Shipping over ssh: the sender (ship.py), the target's side (remote.py, on a bare python3 3.6+), and the
import closure that decides what the target is sent (closure.py). Runs on a ship's target: imports nothing."""
