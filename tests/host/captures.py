# SPDX-License-Identifier: GPL-2.0
"""The blocks a VM test prints for the host to parse: '# KIND-capture: NAME',
the captured lines, '# KIND-capture-end' (tests/vm/test_mdstat_capture.sh)."""


def captures(path, kind):
    """Yields (name, lines) for every '# KIND-capture: NAME' block of the file."""
    start, end = f"# {kind}-capture: ", f"# {kind}-capture-end"
    name, lines = None, []
    with open(path) as fp:
        for raw in fp:
            line = raw.rstrip("\r\n")
            if line.startswith(start):
                name, lines = line[len(start):], []
            elif line == end and name:
                yield name, lines
                name = None
            elif name is not None:
                lines.append(line)
