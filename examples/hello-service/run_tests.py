"""Run the unit tests and write a JUnit XML report, as a CI build would."""

import sys
import unittest
from xml.sax.saxutils import quoteattr


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


suite = unittest.defaultTestLoader.discover(".")
tests = list(flatten(suite))  # running a suite empties it: list the tests first
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = {id(test): message for test, message in result.failures + result.errors}
cases = []
for test in tests:
    body = f"<failure message={quoteattr(failed[id(test)][:200])}/>" if id(test) in failed else ""
    cases.append(
        f"<testcase classname={quoteattr(type(test).__name__)} "
        f"name={quoteattr(test._testMethodName)}>{body}</testcase>"
    )
with open("test-report.xml", "w") as report:
    report.write(
        f'<testsuite name="hello-service" tests="{result.testsRun}" '
        f'failures="{len(result.failures)}" errors="{len(result.errors)}">'
        + "".join(cases)
        + "</testsuite>\n"
    )
sys.exit(0 if result.wasSuccessful() else 1)
