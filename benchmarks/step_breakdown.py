"""Where a converted model's train step spends the bytes the plain one does not.

Compiles the JAX train step of the plain model and of its conversion (as
`benchmarks.cost` builds them) and sums, per kind of top-level instruction
of XLA's compiled HLO (`compiled.as_text()`), the bytes it reads and writes:
its output, plus each operand (an operand that a fusion only slices counts
as the slices it reads, and a fusion that updates a buffer in place as the
update it writes, as XLA's own cost analysis counts them). Kinds are the
instruction's name without its number and the JAX operation it comes from,
layer numbers dropped, so `dense_3` and `dense_17` add up. Prints the kinds
whose bytes differ most between the two steps.

    KERAS_BACKEND=jax python -m benchmarks.step_breakdown --model dense64 \
        --budget 4 [--placement rows] [--templates fewest] [--top 12]

The totals match XLA's `bytes accessed` to within a few percent; the split
into kinds is an approximation read off the HLO text, for finding copies.
"""

import argparse
import collections
import re

from benchmarks import cost

_ARRAY = re.compile(r"\b(pred|[suf]\d+|bf16)\[([0-9,]*)\]")
_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%?([\w.\-]+) = (.*?) ([\w\-]+)\((.*)")
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) \(.*\) -> .* \{$")
_NOT_COUNTED = ("parameter", "get-tuple-element", "tuple", "constant", "bitcast")


def array_bytes(shapes):
    """Bytes of every array in an HLO shape string (a tuple counts them all)."""
    total = 0
    for dtype, dims in _ARRAY.findall(shapes):
        count = 1
        for dim in filter(None, dims.split(",")):
            count *= int(dim)
        bits = 8 if dtype == "pred" else int(re.sub(r"\D", "", dtype))
        total += count * bits // 8
    return total


def computations(hlo):
    """`{name: [instruction lines]}` of an HLO module's text, and the entry's name."""
    bodies, entry, current = {}, None, None
    for line in hlo.splitlines():
        match = _COMPUTATION.match(line)
        if match:
            current = match.group(1)
            bodies[current] = []
            entry = current if line.startswith("ENTRY") else entry
        elif line.startswith("}"):
            current = None
        elif current:
            bodies[current].append(line)
    return bodies, entry


def _operands(arguments):
    return re.findall(r"%([\w.\-]+)", arguments.split("), ")[0])


def _fusion_bytes(body):
    """Bytes a fused computation reads of each parameter, and the bytes it writes.

    A parameter used only through slices (after bitcasts) counts as the
    slices; any other use counts it whole. A fusion whose root is a
    `dynamic-update-slice` of a parameter updates that buffer in place (XLA
    aliases the two): the buffer is not read through the update, and the
    fusion writes the update only.

    Returns:
        `(reads, written)`: bytes read by parameter number, and bytes written
        for an in-place update (`None` for other fusions: their output).
    """
    shapes, numbers, users, root = {}, {}, collections.defaultdict(list), None
    for line in body:
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, opcode, arguments = match.groups()
        shapes[name] = (shape, opcode, _operands(arguments))
        if opcode == "parameter":
            numbers[name] = int(re.match(r"(\d+)", arguments).group(1))
        for operand in shapes[name][2]:
            users[operand].append(name)
        if "ROOT" in line:
            root = name
    written = None
    if root is not None and shapes[root][1] == "dynamic-update-slice":
        written = array_bytes(shapes[shapes[root][2][1]][0])
    reads = {}
    for parameter, number in numbers.items():
        whole = array_bytes(shapes[parameter][0])
        frontier, sliced, only_slices, updated = [parameter], 0, True, False
        while frontier:
            used = frontier.pop()
            for user in users[used]:
                shape, opcode, operands = shapes[user]
                if opcode == "bitcast":
                    frontier.append(user)
                elif opcode == "slice":
                    sliced += array_bytes(shape)
                elif user == root and written is not None and operands[0] == used:
                    updated = True  # the buffer updated in place is not read
                else:
                    only_slices = False
        partial = only_slices and (sliced or updated)
        reads[number] = min(whole, sliced) if partial else whole
    return reads, written


def bytes_by_kind(hlo):
    """`Counter` of bytes read and written, per kind of top-level instruction."""
    bodies, entry = computations(hlo)
    sizes, totals = {}, collections.Counter()
    for line in bodies[entry]:
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, opcode, arguments = match.groups()
        sizes[name] = array_bytes(shape)
        if opcode in _NOT_COUNTED:
            continue
        operands = _operands(arguments)
        read = [sizes.get(operand, 0) for operand in operands]
        written = sizes[name]
        if opcode == "fusion":
            called = re.search(r"calls=%?([\w.\-]+)", arguments).group(1)
            reads, in_place = _fusion_bytes(bodies[called])
            read = [reads.get(i, size) for i, size in enumerate(read)]
            written = written if in_place is None else in_place
        totals[_kind(name, arguments)] += sum(read) + written
    return totals


def _kind(name, arguments):
    operation = re.search(r'op_name="([^"]*)"', arguments)
    operation = operation.group(1) if operation else ""
    operation = re.sub(r"(\w+?)_\d+\b", r"\1", operation)
    return f"{re.sub(r'[.0-9]+$', '', name)} {operation}".strip()


def step_hlo(name, budget, options):
    """The compiled train step's HLO text, for the plain model if `budget` is None."""
    model = cost.build(name, budget, options)
    x, y = cost.batch(model, cost.MODELS[name][1])
    compiled, _ = cost.compiled_step(model, x, y)
    return compiled.as_text()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(cost.MODELS), default="dense64")
    parser.add_argument("--budget", type=float, default=4.0)
    parser.add_argument("--placement", help="convert()'s placement")
    parser.add_argument("--templates", help="convert()'s templates")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    options = {option: getattr(args, option) for option in ("placement", "templates")
               if getattr(args, option) is not None}
    plain = bytes_by_kind(step_hlo(args.model, None, {}))
    converted = bytes_by_kind(step_hlo(args.model, args.budget, options))
    extra = {kind: converted[kind] - plain[kind] for kind in plain.keys() | converted}
    print(f"plain {sum(plain.values()) / 1e6:,.1f} MB, converted "
          f"{sum(converted.values()) / 1e6:,.1f} MB")
    print("| converted − plain, MB | kind of instruction, JAX operation |\n|---|---|")
    largest = sorted(extra.items(), key=lambda item: -abs(item[1]))
    for kind, value in largest[: args.top]:
        print(f"| {value / 1e6:,.1f} | `{kind}` |")
    return extra


if __name__ == "__main__":
    main()
