"""saltpeter.pyi and the built module name the same public API."""
import ast
import pathlib

import saltpeter

STUB = pathlib.Path(saltpeter.__file__).with_name("saltpeter.pyi")


def stub_tree():
    assert STUB.exists(), f"the type stub is not installed beside the module: {STUB}"
    return ast.parse(STUB.read_text())


def public(names):
    return {n for n in names if not n.startswith("_") or n == "__version__"}


def test_stub_lists_every_module_name():
    tree = stub_tree()
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    module = public(n for n in dir(saltpeter) if n not in {"__doc__", "__file__", "__loader__", "__name__",
                                                          "__package__", "__spec__"})
    assert public(stubbed) == module


def test_stub_classes_list_every_member():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(saltpeter, node.name)
        stubbed = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
        members = {n for n in vars(cls) if not n.startswith("_")}
        assert {n for n in stubbed if not n.startswith("_")} == members, node.name
