"""Small hand-built tasks for tests that should not depend on any data source."""

from symtune.tasks.task import Example, Task


def toy_task(name="toy", labels=("neg", "pos"), per_class=12, pair=False, instruction="Is it good?"):
    def example(label, i, split):
        text = f"{split} {label} example number {i}"
        return Example(text, label, f"second part {i}" if pair else None)

    train = [example(label, i, "train") for i in range(per_class) for label in labels]
    test = [example(label, i, "test") for i in range(per_class // 2) for label in labels]
    return Task(name, list(labels), train, test, instruction=instruction).validate()
