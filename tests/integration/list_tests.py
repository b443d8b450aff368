"""Lists the integration tests for tests/integration/CMakeLists.txt.

  python3 list_tests.py MODULE...

prints one line "TEST_ID TIMEOUT_SECONDS" per ctest test: a whole class
(`module.Class`, its tests sharing one cluster) or, for classes that set
CTEST_PER_METHOD = True, one per method (`module.Class.test_x`, each with its
own cluster). TIMEOUT_SECONDS is the class's CTEST_TIMEOUT (default 120).
Run at configure time; it imports the modules but starts nothing.
"""

import importlib
import inspect
import sys
import unittest


def main(modules):
    loader = unittest.TestLoader()
    for name in modules:
        module = importlib.import_module(name)
        for class_name, cls in sorted(vars(module).items()):
            if not (inspect.isclass(cls) and issubclass(cls, unittest.TestCase)):
                continue
            if cls.__module__ != name:
                continue
            methods = loader.getTestCaseNames(cls)
            if not methods:
                continue
            timeout = getattr(cls, "CTEST_TIMEOUT", 120)
            if getattr(cls, "CTEST_PER_METHOD", False):
                for method in methods:
                    print(f"{name}.{class_name}.{method} {timeout}")
            else:
                print(f"{name}.{class_name} {timeout}")


if __name__ == "__main__":
    main(sys.argv[1:])
