"""The injection rules, defined once and free of I/O: names and paths, naming."""
