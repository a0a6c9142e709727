from benchmarks.harness import Skip


def run(ctx):
    raise Skip("todo")
