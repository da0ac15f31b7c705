"""cs231n-style forward/backward function pairs (layers) and planted-bug variants of them (buggy)."""
