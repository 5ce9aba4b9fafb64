"""The hello-service: the sample application Conveyor's demo builds, tests and releases."""


def greet(name: str) -> str:
    name = name.strip() or "world"
    return f"Hello, {name}!"


if __name__ == "__main__":
    import sys

    print(greet(" ".join(sys.argv[1:])))
